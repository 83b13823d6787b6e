//! Where a node keeps its logs: one redb file per log in its directory (the default), or one
//! PostgreSQL database for all of them (`[storage] engine = "postgres"`). Everything above this
//! choice (the log, its state, the region, the federation) is the same on both.

use std::path::PathBuf;
use std::sync::Arc;

use tongban_core::ids::RegionCode;

use crate::config::StorageConfig;
use crate::home::Home;
use crate::log::{Engine, Indexer, Log, LogConfig, LogError, Opened, PgDatabase, RedbEngine};

/// The engine a node's logs are opened in. Cloning shares the database's connections.
#[derive(Clone)]
pub enum Storage {
    /// redb files in the node's directory.
    Files(Home),
    /// A PostgreSQL database.
    Postgres(Arc<PgDatabase>),
}

/// One of a node's logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogName {
    /// The region's own log.
    Region,
    /// The replica of another member's log of a generation.
    Replica { region: RegionCode, generation: u64 },
}

impl LogName {
    /// The name the database keeps the log under.
    fn key(&self) -> String {
        match self {
            LogName::Region => "region".to_owned(),
            LogName::Replica { region, generation } => format!("replica/{region}-{generation}"),
        }
    }

    fn file(&self, home: &Home) -> PathBuf {
        match self {
            LogName::Region => home.log(),
            LogName::Replica { region, generation } => {
                home.replicas().join(format!("{region}-{generation}.redb"))
            }
        }
    }

    /// The replica a file or database name stands for (`<region>-<generation>`).
    fn replica(stem: &str) -> Option<LogName> {
        let (region, generation) = stem.rsplit_once('-')?;
        Some(LogName::Replica {
            region: RegionCode::parse(region).ok()?,
            generation: generation.parse().ok()?,
        })
    }
}

impl Storage {
    /// The engine `config` names for the node in `home`: for PostgreSQL, connected and its
    /// schema migrated.
    pub fn open(home: &Home, config: &StorageConfig) -> Result<Storage, LogError> {
        match config {
            StorageConfig::Redb => Ok(Storage::Files(home.clone())),
            StorageConfig::Postgres(pg) => Ok(Storage::Postgres(PgDatabase::connect(pg)?)),
        }
    }

    /// Opens (creating it if new) the log `name`, as its only writer.
    pub fn open_log(
        &self,
        name: &LogName,
        config: LogConfig,
        indexer: Arc<dyn Indexer>,
    ) -> Result<Log, LogError> {
        let (engine, opened) = self.open_engine(name, &config)?;
        tracing::info!(log = %self.describe(name), ?opened, "log opened");
        Log::over(engine, opened, config, indexer)
    }

    /// The engine of the log `name` and what it holds, for [`Log::over`].
    pub fn open_engine(
        &self,
        name: &LogName,
        config: &LogConfig,
    ) -> Result<(Arc<dyn Engine>, Opened), LogError> {
        match self {
            Storage::Files(home) => {
                let path = name.file(home);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| LogError::Storage(Box::new(e)))?;
                }
                let (engine, opened) =
                    RedbEngine::open(&path, config.cache_bytes, config.contents, config.suite)?;
                Ok((Arc::new(engine), opened))
            }
            Storage::Postgres(db) => {
                let (engine, opened) = db.open_log(&name.key(), config.contents, config.suite)?;
                Ok((Arc::new(engine), opened))
            }
        }
    }

    /// Opens the log `name` to read it while another process writes it (a standby serving
    /// reads): PostgreSQL only, since a redb file has one process.
    pub fn open_log_reader(
        &self,
        name: &LogName,
        config: LogConfig,
        indexer: Arc<dyn Indexer>,
    ) -> Result<Log, LogError> {
        match self {
            Storage::Files(_) => Err(LogError::Config(
                "a log in a redb file has one process: nothing to read beside it".into(),
            )),
            Storage::Postgres(db) => {
                let (engine, opened) =
                    db.open_log_reader(&name.key(), config.contents, config.suite)?;
                Log::over(Arc::new(engine), opened, config, indexer)
            }
        }
    }

    /// Records where this process, the sequencer of the log `name`, answers the node's other
    /// processes (nothing to record for a file, which has no other process).
    pub fn announce_sequencer(&self, name: &LogName, url: &str) -> Result<(), LogError> {
        match self {
            Storage::Files(_) => Ok(()),
            Storage::Postgres(db) => db.announce_sequencer(&name.key(), url),
        }
    }

    /// Where the sequencer of the log `name` answers the node's other processes, if known.
    pub fn sequencer_url(&self, name: &LogName) -> Result<Option<String>, LogError> {
        match self {
            Storage::Files(_) => Ok(None),
            Storage::Postgres(db) => db.sequencer_url(&name.key()),
        }
    }

    /// Whether another process writes the log `name` now: always false for a file, which only
    /// one process can open.
    pub fn log_is_held(&self, name: &LogName) -> Result<bool, LogError> {
        match self {
            Storage::Files(_) => Ok(false),
            Storage::Postgres(db) => db.log_is_held(&name.key()),
        }
    }

    /// Blocks until no other process writes the log `name`.
    pub fn wait_for_log(&self, name: &LogName) -> Result<(), LogError> {
        match self {
            Storage::Files(_) => Ok(()),
            Storage::Postgres(db) => db.wait_for_log(&name.key()),
        }
    }

    /// Removes the log `name` (a replica to be caught up anew, say); its writer must be stopped.
    pub fn remove_log(&self, name: &LogName) -> Result<(), LogError> {
        match self {
            Storage::Files(home) => match std::fs::remove_file(name.file(home)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(LogError::Storage(Box::new(e)))
                }
                _ => Ok(()),
            },
            Storage::Postgres(db) => db.remove_log(&name.key()),
        }
    }

    /// Where the log is kept, for messages: its file, or its name in the database.
    pub fn describe(&self, name: &LogName) -> String {
        match self {
            Storage::Files(home) => name.file(home).display().to_string(),
            Storage::Postgres(_) => format!("database log {}", name.key()),
        }
    }

    /// The replicas stored, by name.
    pub fn replicas(&self) -> Result<Vec<LogName>, LogError> {
        let stems: Vec<String> = match self {
            Storage::Files(home) => {
                let dir = home.replicas();
                let read = match std::fs::read_dir(&dir) {
                    Ok(read) => read,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(LogError::Storage(Box::new(e))),
                };
                let mut stems = Vec::new();
                for item in read {
                    let path = item.map_err(|e| LogError::Storage(Box::new(e)))?.path();
                    if path.extension().is_some_and(|e| e == "redb")
                        && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                    {
                        stems.push(stem.to_owned());
                    }
                }
                stems
            }
            Storage::Postgres(db) => db
                .log_names("replica/")?
                .into_iter()
                .filter_map(|n| n.strip_prefix("replica/").map(str::to_owned))
                .collect(),
        };
        let mut names = Vec::with_capacity(stems.len());
        for stem in stems {
            names.push(LogName::replica(&stem).ok_or_else(|| {
                LogError::Corrupt(format!(
                    "a replica named {stem:?} is not <region>-<generation>"
                ))
            })?);
        }
        names.sort_by_key(LogName::key);
        Ok(names)
    }
}

/// The engine tests run on: PostgreSQL when `TONGBAN_TEST_STORAGE=postgres` (its server at
/// `TONGBAN_TEST_PG_URL`, each call a new schema of its own), else redb files in `dir`. CI runs
/// the node's tests both ways.
#[doc(hidden)]
pub fn test_storage(dir: &std::path::Path) -> Storage {
    match test_postgres() {
        None => Storage::Files(Home::new(dir)),
        Some(config) => match Storage::open(&Home::new(dir), &StorageConfig::Postgres(config)) {
            Ok(storage) => storage,
            Err(e) => panic!("the tests' PostgreSQL server: {e}"),
        },
    }
}

/// The `[storage]` settings of a new schema on the tests' PostgreSQL server, when the tests run
/// on PostgreSQL (`TONGBAN_TEST_STORAGE=postgres`).
#[doc(hidden)]
pub fn test_postgres() -> Option<crate::config::PostgresConfig> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if std::env::var("TONGBAN_TEST_STORAGE").ok()?.as_str() != "postgres" {
        return None;
    }
    let Ok(url) = std::env::var("TONGBAN_TEST_PG_URL") else {
        panic!("TONGBAN_TEST_STORAGE=postgres needs TONGBAN_TEST_PG_URL (.ci/postgres start)")
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let schema = format!(
        "t{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let schema = match crate::config::SchemaName::try_from(schema) {
        Ok(schema) => schema,
        Err(e) => panic!("{e}"),
    };
    Some(crate::config::PostgresConfig {
        url: crate::config::DatabaseUrl(url),
        schema,
        pool_size: 8,
        tls_ca: None,
    })
}
