//! The federation's records in the node's PostgreSQL schema (tables `tb_fed_*`, migration 3 of
//! log/pg_engine/schema.rs). Each write is one statement or one transaction, committed before it
//! returns (the server's `synchronous_commit`, checked at start, makes that durable).

use std::sync::Arc;

use tongban_core::federation::witness::Witnessed;

use super::{StoreError, WitnessStep, fail};
use crate::log::{PgDatabase, PgSession};

fn session(db: &Arc<PgDatabase>) -> Result<PgSession, StoreError> {
    db.session().map_err(fail)
}

fn size(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError(format!("a stored size of {value}")))
}

fn signed(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError(format!("size {value} is beyond a bigint")))
}

pub(super) fn memberships(db: &Arc<PgDatabase>) -> Result<Vec<Vec<u8>>, StoreError> {
    let rows = session(db)?
        .query(
            "SELECT signed FROM tb_fed_memberships ORDER BY version",
            &[],
        )
        .map_err(fail)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(super) fn add_membership(
    db: &Arc<PgDatabase>,
    version: u64,
    signed_bytes: &[u8],
) -> Result<(), StoreError> {
    session(db)?
        .query(
            "INSERT INTO tb_fed_memberships (version, signed) VALUES ($1, $2)
             ON CONFLICT (version) DO UPDATE SET signed = EXCLUDED.signed",
            &[&signed(version)?, &signed_bytes],
        )
        .map_err(fail)?;
    Ok(())
}

/// The head held for `origin` and the line given for it (none only for a head imported from a
/// file that had none), read in `session`.
fn held(
    session: &PgSession,
    origin: &str,
) -> Result<Option<(Witnessed, Option<String>)>, StoreError> {
    let rows = session
        .query(
            "SELECT size, root, note, line FROM tb_fed_witnessed WHERE origin = $1",
            &[&origin],
        )
        .map_err(fail)?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let root: Vec<u8> = row.get(1);
    let head = Witnessed {
        size: size(row.get(0))?,
        root: root
            .try_into()
            .map_err(|_| StoreError(format!("the root held for {origin} is not 32 bytes")))?,
        note: row.get(2),
    };
    Ok(Some((head, row.get(3))))
}

pub(super) fn witnessed(
    db: &Arc<PgDatabase>,
    origin: &str,
) -> Result<Option<Witnessed>, StoreError> {
    Ok(held(&session(db)?, origin)?.map(|(head, _)| head))
}

/// One witness step in a transaction holding an advisory lock on `origin`: steps for one origin
/// from any process of the node run one after another, the way redb's single writer runs them.
pub(super) fn witness_step<E>(
    db: &Arc<PgDatabase>,
    origin: &str,
    decide: impl FnOnce(Option<&Witnessed>, Option<&str>) -> Result<WitnessStep, E>,
) -> Result<Result<WitnessStep, E>, StoreError> {
    let mut session = session(db)?;
    session.begin_locked(&["witness", origin]).map_err(fail)?;
    let held = held(&session, origin)?;
    let step = match decide(
        held.as_ref().map(|(head, _)| head),
        held.as_ref().and_then(|(_, line)| line.as_deref()),
    ) {
        Ok(step) => step,
        // Nothing written: the session rolls back as it is dropped.
        Err(e) => return Ok(Err(e)),
    };
    if let WitnessStep::Cosigned { head, line } = &step {
        let size = signed(head.size)?;
        session
            .query(
                "INSERT INTO tb_fed_witnessed (origin, size, root, note, line)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (origin) DO UPDATE SET size = EXCLUDED.size, root = EXCLUDED.root,
                     note = EXCLUDED.note, line = EXCLUDED.line",
                &[&origin, &size, &head.root.as_slice(), &head.note, line],
            )
            .map_err(fail)?;
    }
    session.commit().map_err(fail)?;
    Ok(Ok(step))
}

pub(super) fn misbehaving(db: &Arc<PgDatabase>) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let rows = session(db)?
        .query(
            "SELECT region, record FROM tb_fed_misbehaving ORDER BY region",
            &[],
        )
        .map_err(fail)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub(super) fn mark_misbehaving(
    db: &Arc<PgDatabase>,
    region: &str,
    record: &[u8],
) -> Result<(), StoreError> {
    session(db)?
        .query(
            "INSERT INTO tb_fed_misbehaving (region, record) VALUES ($1, $2)
             ON CONFLICT (region) DO NOTHING",
            &[&region, &record],
        )
        .map_err(fail)?;
    Ok(())
}

pub(super) fn cosigned(db: &Arc<PgDatabase>) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let rows = session(db)?
        .query("SELECT size, note FROM tb_fed_cosigned WHERE own", &[])
        .map_err(fail)?;
    rows.first()
        .map(|r| Ok((size(r.get(0))?, r.get(1))))
        .transpose()
}

pub(super) fn set_cosigned(db: &Arc<PgDatabase>, size: u64, note: &[u8]) -> Result<(), StoreError> {
    session(db)?
        .query(
            "INSERT INTO tb_fed_cosigned (own, size, note) VALUES (true, $1, $2)
             ON CONFLICT (own) DO UPDATE SET size = EXCLUDED.size, note = EXCLUDED.note",
            &[&signed(size)?, &note],
        )
        .map_err(fail)?;
    Ok(())
}

/// What a `federation.redb` holds, read whole (small: a row per membership version, origin and
/// misbehaving member).
struct Records {
    memberships: Vec<(u64, Vec<u8>)>,
    witnessed: Vec<(String, Witnessed, Option<String>)>,
    misbehaving: Vec<(String, Vec<u8>)>,
    cosigned: Option<(u64, Vec<u8>)>,
}

impl Records {
    fn read(file: &super::file::FileStore) -> Result<Records, StoreError> {
        Ok(Records {
            memberships: file.numbered_memberships()?,
            witnessed: file.all_witnessed()?,
            misbehaving: file.misbehaving()?,
            cosigned: file.cosigned()?,
        })
    }

    /// A digest of the records (not of the file, whose bytes change whenever it is opened).
    fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        let mut put = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        for (version, bytes) in &self.memberships {
            put(&version.to_be_bytes());
            put(bytes);
        }
        for (origin, head, line) in &self.witnessed {
            put(origin.as_bytes());
            put(&head.size.to_be_bytes());
            put(&head.root);
            put(&head.note);
            put(line.as_deref().unwrap_or_default().as_bytes());
        }
        for (region, record) in &self.misbehaving {
            put(region.as_bytes());
            put(record);
        }
        if let Some((size, note)) = &self.cosigned {
            put(&size.to_be_bytes());
            put(note);
        }
        *hasher.finalize().as_bytes()
    }
}

/// Copies what `file` holds into the database's empty federation tables, in one transaction
/// that also records the records' digest: a node that kept its logs in PostgreSQL with
/// `federation.redb` beside them (before the federation's records moved into the database)
/// witnesses on from where it left off. Records whose digest was recorded were imported
/// already (the node stopped before it renamed the file): nothing to do. Refused when the
/// tables hold anything else: a stale copy of the file (another host's) must not overwrite what
/// the region's processes have witnessed since.
pub(super) fn import(
    db: &Arc<PgDatabase>,
    file: &super::file::FileStore,
) -> Result<(), StoreError> {
    let records = Records::read(file)?;
    let digest = records.digest();
    let mut session = session(db)?;
    session.begin_locked(&["witness-import"]).map_err(fail)?;
    let done = session
        .query(
            "SELECT count(*) FROM tb_fed_imported WHERE digest = $1",
            &[&digest.as_slice()],
        )
        .map_err(fail)?;
    if done.first().map_or(0, |r| r.get::<_, i64>(0)) > 0 {
        return Ok(());
    }
    let held = session
        .query(
            "SELECT (SELECT count(*) FROM tb_fed_memberships) + (SELECT count(*) FROM tb_fed_witnessed)
                  + (SELECT count(*) FROM tb_fed_misbehaving) + (SELECT count(*) FROM tb_fed_cosigned)",
            &[],
        )
        .map_err(fail)?;
    if held.first().map_or(0, |r| r.get::<_, i64>(0)) > 0 {
        return Err(StoreError(
            "the database holds federation records already; federation.redb in the node's \
             directory was not imported (move it away once you have checked which is current)"
                .into(),
        ));
    }
    for (version, signed_bytes) in &records.memberships {
        session
            .query(
                "INSERT INTO tb_fed_memberships (version, signed) VALUES ($1, $2)",
                &[&signed(*version)?, signed_bytes],
            )
            .map_err(fail)?;
    }
    for (origin, head, line) in &records.witnessed {
        session
            .query(
                "INSERT INTO tb_fed_witnessed (origin, size, root, note, line)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    origin,
                    &signed(head.size)?,
                    &head.root.as_slice(),
                    &head.note,
                    line,
                ],
            )
            .map_err(fail)?;
    }
    for (region, record) in &records.misbehaving {
        session
            .query(
                "INSERT INTO tb_fed_misbehaving (region, record) VALUES ($1, $2)",
                &[region, record],
            )
            .map_err(fail)?;
    }
    if let Some((size, note)) = &records.cosigned {
        session
            .query(
                "INSERT INTO tb_fed_cosigned (own, size, note) VALUES (true, $1, $2)",
                &[&signed(*size)?, note],
            )
            .map_err(fail)?;
    }
    session
        .query(
            "INSERT INTO tb_fed_imported (digest) VALUES ($1)",
            &[&digest.as_slice()],
        )
        .map_err(fail)?;
    session.commit().map_err(fail)
}
