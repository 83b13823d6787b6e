//! What the federation keeps durably besides the replicas: every membership version seen, the
//! witness's last cosigned checkpoint per origin (it must never cosign a fork, crash or not), the
//! members marked misbehaving with their evidence, and the node's own latest cosigned checkpoint.
//! Kept where the node keeps its logs: `federation.redb` beside the redb files (`file.rs`), or
//! tables in the node's PostgreSQL schema (`pg.rs`), so that whichever process of the region
//! takes over its sequencing witnesses from where the last one left off.

mod file;
mod pg;

use std::sync::Arc;

use tongban_core::federation::witness::Witnessed;

use crate::home::Home;
use crate::log::PgDatabase;
use crate::storage::Storage;

#[derive(Debug, thiserror::Error)]
#[error("federation store: {0}")]
pub struct StoreError(String);

fn fail(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// What one witness step decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessStep {
    /// `head` is held from now on and `line` is its cosignature.
    Cosigned { head: Witnessed, line: String },
    /// The checkpoint held was asked for again: its line, unchanged (nothing written).
    Repeated(String),
    /// The request's old size is not the one held.
    Conflict(u64),
}

pub struct Store(Backend);

enum Backend {
    File(file::FileStore),
    Postgres(Arc<PgDatabase>),
}

impl Store {
    /// Runs `work` on the store from a blocking thread: on PostgreSQL each call is a round
    /// trip (or a timeout while the server is unreachable), which must not hold one of the few
    /// async threads every request and task shares.
    pub async fn off_thread<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(fail)?
    }

    /// The store of the node in `home`, whose logs are in `storage`. On PostgreSQL, a
    /// `federation.redb` left in `home` from before is imported once into the database's empty
    /// tables, then renamed `federation.redb.imported`.
    pub fn open(storage: &Storage, home: &Home) -> Result<Store, StoreError> {
        Ok(Store(match storage {
            Storage::Files(home) => Backend::File(file::FileStore::open(&home.federation_store())?),
            Storage::Postgres(db) => {
                let path = home.federation_store();
                if path.exists() {
                    pg::import(db, &file::FileStore::open(&path)?)?;
                    // Recorded with the import: a stop before this rename imports nothing twice.
                    std::fs::rename(&path, path.with_extension("redb.imported")).map_err(fail)?;
                    tracing::warn!(from = %path.display(), "the federation's records were imported into the database");
                }
                Backend::Postgres(db.clone())
            }
        }))
    }

    /// Every stored membership version, oldest first.
    pub fn memberships(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        match &self.0 {
            Backend::File(file) => file.memberships(),
            Backend::Postgres(db) => pg::memberships(db),
        }
    }

    pub fn add_membership(&self, version: u64, signed: &[u8]) -> Result<(), StoreError> {
        match &self.0 {
            Backend::File(file) => file.add_membership(version, signed),
            Backend::Postgres(db) => pg::add_membership(db, version, signed),
        }
    }

    pub fn witnessed(&self, origin: &str) -> Result<Option<Witnessed>, StoreError> {
        match &self.0 {
            Backend::File(file) => file.witnessed(origin),
            Backend::Postgres(db) => pg::witnessed(db, origin),
        }
    }

    /// One step of the witness for `origin`, atomic against every other, from any process:
    /// reads the checkpoint held (with the cosignature line given for it), lets `decide` judge
    /// the request against it, and, when it decides to cosign, stores the new head with its
    /// line, all in one transaction that no other step for `origin` interleaves with. The line
    /// is durable when this returns it.
    pub fn witness_step<E>(
        &self,
        origin: &str,
        decide: impl FnOnce(Option<&Witnessed>, Option<&str>) -> Result<WitnessStep, E>,
    ) -> Result<Result<WitnessStep, E>, StoreError> {
        match &self.0 {
            Backend::File(file) => file.witness_step(origin, decide),
            Backend::Postgres(db) => pg::witness_step(db, origin, decide),
        }
    }

    pub fn misbehaving(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match &self.0 {
            Backend::File(file) => file.misbehaving(),
            Backend::Postgres(db) => pg::misbehaving(db),
        }
    }

    /// Records a misbehaving member; the first record stays.
    pub fn mark_misbehaving(&self, region: &str, record: &[u8]) -> Result<(), StoreError> {
        match &self.0 {
            Backend::File(file) => file.mark_misbehaving(region, record),
            Backend::Postgres(db) => pg::mark_misbehaving(db, region, record),
        }
    }

    pub fn cosigned(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match &self.0 {
            Backend::File(file) => file.cosigned(),
            Backend::Postgres(db) => pg::cosigned(db),
        }
    }

    pub fn set_cosigned(&self, size: u64, note: &[u8]) -> Result<(), StoreError> {
        match &self.0 {
            Backend::File(file) => file.set_cosigned(size, note),
            Backend::Postgres(db) => pg::set_cosigned(db, size, note),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn head(size: u64) -> Witnessed {
        Witnessed {
            size,
            root: [size as u8; 32],
            note: format!("note {size}").into_bytes(),
        }
    }

    /// Cosigns `size` for `origin` if the store holds `from` (none: nothing yet).
    fn step(store: &Store, origin: &str, from: Option<u64>, size: u64) -> WitnessStep {
        store
            .witness_step(origin, |held, _| {
                Ok::<_, ()>(match held.map(|h| h.size) == from {
                    true => WitnessStep::Cosigned {
                        head: head(size),
                        line: format!("line {size}"),
                    },
                    false => WitnessStep::Conflict(held.map_or(0, |h| h.size)),
                })
            })
            .unwrap()
            .unwrap()
    }

    #[test]
    fn simultaneous_witness_steps_for_one_origin_never_both_cosign_from_one_head() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::test_storage(dir.path());
        let store = Store::open(&storage, &Home::new(dir.path())).unwrap();
        step(&store, "a.example/log", None, 1);
        // Sixteen requests extend size 1 at once, each to a size of its own: one wins.
        let start = std::sync::Barrier::new(16);
        let steps: Vec<WitnessStep> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..16)
                .map(|i| {
                    let (store, start) = (&store, &start);
                    scope.spawn(move || {
                        start.wait();
                        step(store, "a.example/log", Some(1), 10 + i)
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let won: Vec<_> = steps
            .iter()
            .filter(|s| matches!(s, WitnessStep::Cosigned { .. }))
            .collect();
        assert_eq!(won.len(), 1, "{steps:?}");
        let WitnessStep::Cosigned { head: winner, .. } = won[0] else {
            unreachable!()
        };
        assert_eq!(
            store.witnessed("a.example/log").unwrap().as_ref(),
            Some(winner)
        );
        // The line given is kept with its head.
        let line = store
            .witness_step("a.example/log", |_, line| {
                Ok::<_, ()>(WitnessStep::Repeated(line.unwrap().to_owned()))
            })
            .unwrap()
            .unwrap();
        assert_eq!(line, WitnessStep::Repeated(format!("line {}", winner.size)));
    }

    #[test]
    fn the_other_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::test_storage(dir.path());
        let store = Store::open(&storage, &Home::new(dir.path())).unwrap();
        assert_eq!(store.cosigned().unwrap(), None);
        store.add_membership(2, b"two").unwrap();
        store.add_membership(1, b"one").unwrap();
        assert_eq!(
            store.memberships().unwrap(),
            [b"one".to_vec(), b"two".to_vec()]
        );
        store.mark_misbehaving("370100", b"first").unwrap();
        store.mark_misbehaving("370100", b"second").unwrap();
        assert_eq!(
            store.misbehaving().unwrap(),
            [("370100".to_owned(), b"first".to_vec())]
        );
        store.set_cosigned(5, b"five").unwrap();
        store.set_cosigned(6, b"six").unwrap();
        assert_eq!(store.cosigned().unwrap(), Some((6, b"six".to_vec())));
    }

    #[test]
    fn a_federation_file_beside_a_database_is_imported_once() {
        let Some(config) = crate::storage::test_postgres() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let file = Store(Backend::File(
            file::FileStore::open(&home.federation_store()).unwrap(),
        ));
        file.add_membership(1, b"one").unwrap();
        step(&file, "a.example/log", None, 3);
        file.set_cosigned(4, b"four").unwrap();
        let kept = std::fs::read(home.federation_store()).unwrap();
        drop(file);

        let storage =
            Storage::open(&home, &crate::config::StorageConfig::Postgres(config)).unwrap();
        let store = Store::open(&storage, &home).unwrap();
        assert_eq!(store.witnessed("a.example/log").unwrap(), Some(head(3)));
        assert_eq!(store.memberships().unwrap(), [b"one".to_vec()]);
        assert_eq!(store.cosigned().unwrap(), Some((4, b"four".to_vec())));
        assert!(!home.federation_store().exists());
        // Stopped before the rename: the same records again are not imported twice.
        std::fs::write(home.federation_store(), &kept).unwrap();
        Store::open(&storage, &home).unwrap();
        assert!(!home.federation_store().exists());
        // Another file (a stale copy from elsewhere) is refused, and left where it is.
        let other = Store(Backend::File(
            file::FileStore::open(&home.federation_store()).unwrap(),
        ));
        step(&other, "a.example/log", None, 2);
        drop(other);
        let refused = Store::open(&storage, &home).err().unwrap();
        assert!(refused.to_string().contains("not imported"), "{refused}");
        assert!(home.federation_store().exists());
        assert_eq!(store.witnessed("a.example/log").unwrap(), Some(head(3)));
    }
}
