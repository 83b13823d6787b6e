//! The PostgreSQL engine (`[storage] engine = "postgres"`): every log of a node in one database
//! schema, for regions whose data centre keeps its services of record in a replicated database.
//!
//! A [`WriteSet`] is one transaction on the log's writer connection, acknowledged once
//! PostgreSQL has committed it (with its default `synchronous_commit`, once the commit is in
//! its write-ahead log on disk). Each set's rows go in one multi-row statement per table
//! (`unnest` of arrays), so a group commit of thousands of entries is a handful of round trips.
//!
//! One writer per log: the writer connection holds a session advisory lock on the log while it
//! lives, so a second process cannot write the same log, and every commit also checks that the
//! log's size is the one this writer last committed (a fence): a writer that lost its
//! connection, and with it the lock, refuses to write again if anybody else wrote meanwhile.
//!
//! Snapshots are `REPEATABLE READ READ ONLY` transactions on pooled connections (deadpool), so
//! reads never wait for the writer. The driver is async (tokio-postgres); its connections run on
//! a small runtime of the engine's own, so the engine's blocking calls work from any thread,
//! async or not, like redb's.

mod row_reads;
mod schema;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use deadpool_postgres::{ClientWrapper, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row as PgRow};
use tokio_postgres_rustls::MakeRustlsConnect;
use tongban_core::suite::Suite;

use super::engine::{
    Engine, IndexRows, KindRow, Opened, PRUNED_PER_WRITE, RowsAt, RowsAtLater, Snapshot, StateView,
    WriteSet,
};
use super::state::{Row, StateOp};
use super::{Contents, LogError};
use crate::config::PostgresConfig;
use row_reads::RowReads;
use schema::{signed, unsigned};

/// Rows fetched per round trip when a scan or a rebuild pages through a table.
const PAGE: i64 = 1024;
/// How long a connection may take to open, and a caller may wait for a pooled one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a log waits for another process to release its writer lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long a running writer whose session was lost waits to take the writer lock again:
/// shorter than [`LOCK_WAIT`] at start, since a writer that cannot soon confirm that it still
/// writes the log must step down (another process may be taking it over), and a lock its own
/// lost session held is gone within moments of the server noticing.
const RELOCK_WAIT: Duration = Duration::from_secs(1);
/// How long one statement may run before PostgreSQL cancels it.
const STATEMENT_TIMEOUT_MS: u64 = 60_000;

/// A node's PostgreSQL database: its connection settings, a bounded pool of connections for
/// snapshots, and the runtime that drives them. Shared by every log of the node.
pub struct PgDatabase {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    dial: Dial,
    schema: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Not `Runtime::drop`, which blocks and panics when the last handle goes on an async
        // thread of the node's own runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A parameter moved into a query run on the engine's runtime.
type Param = Box<dyn ToSql + Send + Sync>;

impl PgDatabase {
    /// Connects to the database at `url` (a libpq URL or key=value string), keeping the node's
    /// tables in `schema` (a plain identifier), with at most `pool_size` pooled connections;
    /// creates the schema and applies the migrations it lacks.
    pub fn connect(settings: &PostgresConfig) -> Result<Arc<PgDatabase>, LogError> {
        let (schema, pool_size) = (settings.schema.as_str(), settings.pool_size);
        let mut config: tokio_postgres::Config = settings
            .url
            .0
            .parse()
            .map_err(|e| LogError::Config(format!("storage url: {e}")))?;
        let tls = tls_of(&config, settings.tls_ca.as_deref())?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // Every connection reads and writes the node's schema, and no statement runs unbounded.
        // Every statement is a key lookup or a batch insert whose plan does not depend on its
        // parameters: planned once per connection, not once per execution (PostgreSQL's default
        // plans the first five executions anew, and then whenever it judges a custom plan
        // cheaper; planning was a third of the server's time per issuance).
        let options = format!(
            "{} -c search_path={schema} -c statement_timeout={STATEMENT_TIMEOUT_MS} \
             -c plan_cache_mode=force_generic_plan",
            config.get_options().unwrap_or_default()
        );
        config
            .options(options.trim_start())
            // Which node each session is, in pg_stat_activity.
            .application_name(format!("tongban-node/{schema}"))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tongban-postgres")
            .enable_all()
            .build()
            .map_err(LogError::Spawn)?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            None => Manager::from_config(config.clone(), NoTls, manager_config),
            Some(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT * 2))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| LogError::Config(format!("storage pool: {e}")))?;
        let db = Arc::new(PgDatabase {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
            dial: Dial { config, tls },
            schema: schema.to_owned(),
        });
        let (config, schema) = (db.dial.clone(), db.schema.clone());
        let version = db.on_runtime(async move {
            let client = connect(&config).await?;
            refuse_undurable_settings(&client).await?;
            schema::migrate(&client, &schema).await
        })?;
        tracing::info!(schema = %db.schema, version, "database opened");
        Ok(db)
    }

    /// Runs `work` on the engine's runtime and waits for it: the engine's methods are blocking,
    /// whatever thread calls them.
    fn on_runtime<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, LogError>> + Send + 'static,
    ) -> Result<T, LogError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            // The caller waits on `rx` until this is sent.
            let _ = tx.send(work.await);
        });
        rx.recv()
            .map_err(|_| LogError::Storage("the database task stopped before answering".into()))?
    }

    /// The settings of a log writer's own connection (named apart in pg_stat_activity).
    fn writer_config(&self) -> Dial {
        let mut dial = self.dial.clone();
        dial.config
            .application_name(format!("tongban-node/{} writer", self.schema));
        dial
    }

    /// Opens the log `name` (creating it, keeping `wanted`, its tree in `suite`'s hash) as its
    /// only writer: refused while another process holds it.
    pub fn open_log(
        self: &Arc<Self>,
        name: &str,
        wanted: Contents,
        suite: Suite,
    ) -> Result<(PgEngine, Opened), LogError> {
        let (config, owned) = (self.writer_config(), name.to_owned());
        let key = lock_key(&["log", &self.schema, name]);
        let (conn, registered) = self.on_runtime(async move {
            let conn = connect(&config).await?;
            take_writer_lock(&conn, key, &owned, LOCK_WAIT).await?;
            let registered = schema::register(&conn, &owned, wanted, suite).await?;
            Ok((Arc::new(conn), registered))
        })?;
        let engine = PgEngine {
            committed: Mutex::new((registered.opened.size, registered.opened.state_size)),
            row_reads: RowReads::start(&self.handle, self.pool.clone(), registered.id),
            db: self.clone(),
            log: registered.id,
            name: name.to_owned(),
            lock: key,
            writer: Mutex::new(WriterSlot {
                conn: Some(conn),
                size: registered.opened.size,
                pending: None,
                superseded: false,
            }),
            reader: false,
        };
        Ok((engine, registered.opened))
    }

    /// Opens the log `name` to read it only, while another process writes it (a standby
    /// serving reads): every write is refused with [`LogError::ReadOnly`].
    pub fn open_log_reader(
        self: &Arc<Self>,
        name: &str,
        wanted: Contents,
        suite: Suite,
    ) -> Result<(PgEngine, Opened), LogError> {
        let (dial, owned) = (self.dial.clone(), name.to_owned());
        let registered = self.on_runtime(async move {
            let conn = connect(&dial).await?;
            schema::register(&conn, &owned, wanted, suite).await
        })?;
        let engine = PgEngine {
            committed: Mutex::new((registered.opened.size, registered.opened.state_size)),
            row_reads: RowReads::start(&self.handle, self.pool.clone(), registered.id),
            db: self.clone(),
            log: registered.id,
            name: name.to_owned(),
            lock: lock_key(&["log", &self.schema, name]),
            writer: Mutex::new(WriterSlot {
                conn: None,
                size: registered.opened.size,
                pending: None,
                superseded: false,
            }),
            reader: true,
        };
        Ok((engine, registered.opened))
    }

    /// Whether another process writes the log `name` now (holds its writer lock).
    pub fn log_is_held(&self, name: &str) -> Result<bool, LogError> {
        let (config, key) = (self.writer_config(), lock_key(&["log", &self.schema, name]));
        self.on_runtime(async move {
            let conn = connect(&config).await?;
            let row = conn
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(storage)?;
            let free: bool = row.get(0);
            if free {
                conn.execute("SELECT pg_advisory_unlock($1)", &[&key])
                    .await
                    .map_err(storage)?;
            }
            Ok(!free)
        })
    }

    /// Blocks until no process writes the log `name` (its writer lock is free: the writer
    /// stopped, or died and the server ended its session), retrying while the database is
    /// unreachable. A standby waits here to take over.
    pub fn wait_for_log(&self, name: &str) -> Result<(), LogError> {
        let key = lock_key(&["log", &self.schema, name]);
        loop {
            let config = self.writer_config();
            let waited = self.on_runtime(async move {
                let conn = connect(&config).await?;
                // A blocking lock, given up now and then so a server that went away is noticed.
                conn.batch_execute("SET lock_timeout = '10s'")
                    .await
                    .map_err(storage)?;
                match conn.execute("SELECT pg_advisory_lock($1)", &[&key]).await {
                    Ok(_) => {
                        conn.execute("SELECT pg_advisory_unlock($1)", &[&key])
                            .await
                            .map_err(storage)?;
                        Ok(true)
                    }
                    Err(e)
                        if e.code()
                            == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(storage(e)),
                }
            });
            match waited {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "waiting for the log's writer lock; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Removes the log `name` and everything it holds, in one transaction; waits for (or is
    /// refused by) a process writing it. Removing a log that does not exist does nothing.
    pub fn remove_log(&self, name: &str) -> Result<(), LogError> {
        let (config, owned) = (self.writer_config(), name.to_owned());
        let key = lock_key(&["log", &self.schema, name]);
        self.on_runtime(async move {
            let conn = connect(&config).await?;
            take_writer_lock(&conn, key, &owned, LOCK_WAIT).await?;
            in_transaction(&conn, async {
                let rows = conn
                    .query("SELECT id FROM tb_logs WHERE name = $1", &[&owned])
                    .await
                    .map_err(storage)?;
                let Some(id) = rows.first().map(|r| r.get::<_, i32>(0)) else {
                    return Ok(());
                };
                for table in [
                    "tb_entries",
                    "tb_hashes",
                    "tb_index_runs",
                    "tb_blobs",
                    "tb_state",
                    "tb_checkpoints",
                    "tb_requests",
                ] {
                    conn.execute(&format!("DELETE FROM {table} WHERE log = $1"), &[&id])
                        .await
                        .map_err(storage)?;
                }
                conn.execute("DELETE FROM tb_logs WHERE id = $1", &[&id])
                    .await
                    .map_err(storage)?;
                Ok(())
            })
            .await?;
            conn.execute("SELECT pg_advisory_unlock($1)", &[&key])
                .await
                .map_err(storage)?;
            Ok(())
        })
    }

    /// The names of the logs stored, in name order, that start with `prefix`.
    pub fn log_names(&self, prefix: &str) -> Result<Vec<String>, LogError> {
        let (pool, pattern) = (self.pool.clone(), format!("{}%", like_escape(prefix)));
        self.on_runtime(async move {
            let conn = pool.get().await.map_err(storage)?;
            let rows = conn
                .query(
                    "SELECT name FROM tb_logs WHERE name LIKE $1 ORDER BY name",
                    &[&pattern],
                )
                .await
                .map_err(storage)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
}

/// `prefix` as a LIKE pattern matching itself only.
fn like_escape(prefix: &str) -> String {
    prefix
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A 64-bit advisory lock key for `parts` (PostgreSQL's advisory locks are keyed by a bigint).
fn lock_key(parts: &[&str]) -> i64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"tongban advisory lock");
    for part in parts {
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest.as_bytes()[..8]);
    i64::from_be_bytes(key)
}

fn storage(e: impl Into<DbError>) -> LogError {
    LogError::Storage(Box::new(e.into()))
}

/// A database error with what the server said (tokio-postgres shows only "db error").
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
struct DbError {
    text: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> DbError {
        let text = match e.as_db_error() {
            Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
            // With its causes: "error performing TLS handshake" alone does not say that the
            // server's certificate was refused, nor why.
            None => {
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(inner) = cause {
                    text = format!("{text}: {inner}");
                    cause = inner.source();
                }
                text
            }
        };
        DbError {
            text,
            source: Box::new(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> DbError {
        DbError {
            text: format!("database connection pool: {e}"),
            source: Box::new(e),
        }
    }
}

/// How to reach the server: its settings, and the TLS connector when `[storage] tls_ca` names
/// the CA its certificate must chain to.
#[derive(Clone)]
struct Dial {
    config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
}

/// A connection of its own (not pooled), driven by the engine's runtime.
async fn connect(dial: &Dial) -> Result<ClientWrapper, LogError> {
    async fn drive<F: Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection ended");
        }
    }
    let (client, task) = match &dial.tls {
        None => {
            let (client, connection) = dial.config.connect(NoTls).await.map_err(storage)?;
            (client, tokio::spawn(drive(connection)))
        }
        Some(tls) => {
            let (client, connection) = dial.config.connect(tls.clone()).await.map_err(storage)?;
            (client, tokio::spawn(drive(connection)))
        }
    };
    Ok(ClientWrapper::new(client, task))
}

/// The TLS connector for `config`: TLS verified against the CA in `tls_ca` when given; none
/// otherwise, and then a URL asking for TLS is refused rather than left unverified.
fn tls_of(
    url: &tokio_postgres::Config,
    tls_ca: Option<&std::path::Path>,
) -> Result<Option<MakeRustlsConnect>, LogError> {
    use rustls_pki_types::pem::PemObject;
    use tokio_postgres::config::SslMode;
    let Some(path) = tls_ca else {
        return match url.get_ssl_mode() {
            SslMode::Require => Err(LogError::Config(
                "the storage url asks for TLS (sslmode=require): name the CA that signs the \
                 server's certificate in [storage] tls_ca"
                    .into(),
            )),
            _ => Ok(None),
        };
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        LogError::Config(format!("[storage] tls_ca {}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        roots
            .add(cert.map_err(|e| unreadable(&e))?)
            .map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"no certificate in the file"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// Refuses a server that would acknowledge a commit before it is on disk (`fsync` or
/// `synchronous_commit` off): the node answers a write only once it is durable.
async fn refuse_undurable_settings(conn: &ClientWrapper) -> Result<(), LogError> {
    for setting in ["fsync", "synchronous_commit"] {
        let row = conn
            .query_one("SELECT current_setting($1)", &[&setting])
            .await
            .map_err(storage)?;
        let value: String = row.get(0);
        if value == "off" {
            return Err(LogError::Config(format!(
                "the database has {setting} = off: a commit it acknowledges may be lost in a \
                 crash, so the node will not use it (turn {setting} on)"
            )));
        }
    }
    Ok(())
}

/// Takes the session lock that makes this connection the log's only writer, waiting at most
/// [`LOCK_WAIT`] for a process that held it (one just killed, whose session the server has not
/// ended yet) to let it go.
async fn take_writer_lock(
    conn: &ClientWrapper,
    key: i64,
    name: &str,
    wait: Duration,
) -> Result<(), LogError> {
    // At least a millisecond: zero would wait forever.
    conn.batch_execute(&format!("SET lock_timeout = {}", wait.as_millis().max(1)))
        .await
        .map_err(storage)?;
    let taken = conn.execute("SELECT pg_advisory_lock($1)", &[&key]).await;
    conn.batch_execute("RESET lock_timeout")
        .await
        .map_err(storage)?;
    match taken {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            Err(LogError::Superseded(format!(
                "log {name} is written by another process (it holds the log's writer lock)"
            )))
        }
        Err(e) => Err(storage(e)),
    }
}

/// A log kept in PostgreSQL.
pub struct PgEngine {
    db: Arc<PgDatabase>,
    log: i32,
    name: String,
    lock: i64,
    writer: Mutex<WriterSlot>,
    /// (size, state size) as this writer last committed them: read without the writer's lock.
    committed: Mutex<(u64, u64)>,
    /// Opened to read only ([`PgDatabase::open_log_reader`]).
    reader: bool,
    /// Row reads by key, sent together.
    row_reads: RowReads,
}

impl Drop for PgEngine {
    fn drop(&mut self) {
        // The lock goes with the session anyway, but only once the server notices the closed
        // socket: released here, the log can be opened again at once (a restart, a test).
        let conn = match self.writer.get_mut() {
            Ok(slot) => slot.conn.take(),
            Err(poisoned) => poisoned.into_inner().conn.take(),
        };
        if let Some(conn) = conn.filter(|c| !c.is_closed()) {
            let key = self.lock;
            let released = self.db.on_runtime(async move {
                conn.execute("SELECT pg_advisory_unlock($1)", &[&key])
                    .await
                    .map_err(storage)
            });
            if let Err(e) = released {
                tracing::warn!(log = %self.name, error = %e, "releasing the writer lock failed");
            }
        }
    }
}

/// The writer's connection and what it knows the log's size to be.
struct WriterSlot {
    /// Holds the log's writer lock while open; `None` after a failure, reopened by the next
    /// write.
    conn: Option<Arc<ClientWrapper>>,
    /// The size this writer last committed.
    size: u64,
    /// The size the last write would have made, while its outcome is unknown (the connection
    /// failed during it).
    pending: Option<u64>,
    /// Set once another process wrote the log: this one never writes it again.
    superseded: bool,
}

impl PgEngine {
    /// The writer's connection, reopened (and the lock taken again) after a failure, and only if
    /// the log is as this writer left it.
    fn writer_conn(&self, slot: &mut WriterSlot) -> Result<Arc<ClientWrapper>, LogError> {
        if self.reader {
            return Err(LogError::ReadOnly);
        }
        if slot.superseded {
            return Err(self.superseded_error());
        }
        if let Some(conn) = &slot.conn
            && !conn.is_closed()
        {
            return Ok(conn.clone());
        }
        slot.conn = None;
        let (config, key, name, log) = (
            self.db.writer_config(),
            self.lock,
            self.name.clone(),
            self.log,
        );
        let (conn, stored) = self.db.on_runtime(async move {
            let conn = connect(&config).await?;
            take_writer_lock(&conn, key, &name, RELOCK_WAIT).await?;
            let row = conn
                .query_one(
                    "SELECT size, state_size FROM tb_logs WHERE id = $1",
                    &[&log],
                )
                .await
                .map_err(storage)?;
            Ok((
                Arc::new(conn),
                (unsigned(row.get(0))?, unsigned(row.get(1))?),
            ))
        })?;
        let (stored, state_size) = stored;
        if stored != slot.size && Some(stored) != slot.pending {
            slot.superseded = true;
            tracing::error!(log = %self.name, mine = slot.size, stored, "another process wrote this log");
            return Err(self.superseded_error());
        }
        tracing::info!(log = %self.name, size = stored, "log writer reconnected");
        *self.committed.lock().map_err(|_| poisoned())? = (stored, state_size);
        slot.size = stored;
        slot.pending = None;
        slot.conn = Some(conn.clone());
        Ok(conn)
    }

    fn superseded_error(&self) -> LogError {
        LogError::Superseded(format!(
            "log {} was written by another process since this one last wrote it",
            self.name
        ))
    }

    /// A read-only transaction on a pooled connection, and the log's sizes as it sees them.
    fn begin_read(&self) -> Result<(ReadTxn, u64, u64), LogError> {
        let (pool, log) = (self.db.pool.clone(), self.log);
        let (conn, size, state_size) = self.db.on_runtime(async move {
            let conn = pool.get().await.map_err(storage)?;
            // One round trip: a snapshot is taken for every act and every verification.
            let messages = conn
                .simple_query(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
                     SELECT size, state_size FROM tb_logs WHERE id = {log}"
                ))
                .await
                .map_err(storage)?;
            let sizes = messages.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some((
                    row.get(0).and_then(|v| v.parse::<u64>().ok()),
                    row.get(1).and_then(|v| v.parse::<u64>().ok()),
                )),
                _ => None,
            });
            let Some((Some(size), Some(state_size))) = sizes else {
                return Err(LogError::Corrupt(format!("log {log} has no sizes")));
            };
            Ok((Arc::new(conn), size, state_size))
        })?;
        let txn = ReadTxn {
            db: self.db.clone(),
            conn: OnceLock::from(conn),
            log,
            in_transaction: true,
        };
        Ok((txn, size, state_size))
    }
}

impl Engine for PgEngine {
    fn write(&self, set: &WriteSet<'_>) -> Result<(), LogError> {
        let batch = Batch::of(self.log, set)?;
        let mut slot = self.writer.lock().map_err(|_| poisoned())?;
        let conn = self.writer_conn(&mut slot)?;
        let (expected, new_size) = (slot.size, set.size.unwrap_or(slot.size));
        slot.pending = Some(new_size);
        let written = {
            let conn = conn.clone();
            self.db
                .on_runtime(async move { write_batch(&conn, batch, expected, new_size).await })
        };
        match written {
            Ok(()) => {
                slot.size = new_size;
                slot.pending = None;
                let mut committed = self.committed.lock().map_err(|_| poisoned())?;
                committed.0 = new_size;
                if let Some(state_size) = set.state_size {
                    committed.1 = state_size;
                }
                Ok(())
            }
            Err(LogError::Superseded(_)) => {
                slot.superseded = true;
                slot.conn = None;
                Err(self.superseded_error())
            }
            Err(e) => {
                // Outside a transaction again? (A ROLLBACK there only warns.)
                let reset = {
                    let conn = conn.clone();
                    self.db.on_runtime(async move {
                        conn.batch_execute("ROLLBACK").await.map_err(storage)
                    })
                };
                if conn.is_closed() || reset.is_err() {
                    // Outcome unknown if the connection failed mid-commit: `pending` stays, and
                    // the next write reconnects and accepts either size.
                    slot.conn = None;
                } else {
                    // Rolled back, and the connection (with the writer lock it holds) kept:
                    // dropping it would hand the log to a standby over a refused statement.
                    slot.pending = None;
                }
                Err(e)
            }
        }
    }

    fn read(&self) -> Result<Box<dyn Snapshot + '_>, LogError> {
        let (txn, size, _) = self.begin_read()?;
        Ok(Box::new(PgSnapshot { txn, size }))
    }

    fn state(&self) -> Result<Box<dyn StateView>, LogError> {
        let (txn, _, size) = self.begin_read()?;
        Ok(Box::new(PgState { txn, size }))
    }

    fn sequencer_state(&self) -> Result<Box<dyn StateView>, LogError> {
        // The size first: every read after it sees at least what it says was committed.
        let size = self.committed.lock().map_err(|_| poisoned())?.1;
        let txn = ReadTxn {
            db: self.db.clone(),
            conn: OnceLock::new(),
            log: self.log,
            in_transaction: false,
        };
        Ok(Box::new(PgState { txn, size }))
    }

    fn request_row(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        let (pool, log, key) = (self.db.pool.clone(), self.log, key.to_vec());
        let params: Vec<Param> = vec![Box::new(log), Box::new(key)];
        let rows = self.db.on_runtime(async move {
            let conn = pool.get().await.map_err(storage)?;
            query(&conn, READ_REQUEST, &params).await
        })?;
        rows.first()
            .map(|r| Ok((unsigned(r.get(0))?, r.get(1))))
            .transpose()
    }

    fn check_writer(&self) -> Result<(), LogError> {
        let mut slot = self.writer.lock().map_err(|_| poisoned())?;
        self.writer_conn(&mut slot).map(|_| ())
    }

    fn reads_wait_on_network(&self) -> bool {
        true
    }

    fn rows_at(&self, keys: &[(u8, Vec<u8>)]) -> Result<RowsAt, LogError> {
        self.db.on_runtime(self.row_reads.read(keys.to_vec()))
    }

    fn rows_at_later(&self, keys: Vec<(u8, Vec<u8>)>) -> RowsAtLater {
        // The row reader's queue and answers are the runtime's channels, which any runtime's
        // task may await: no hop onto the engine's runtime to wait there.
        Box::pin(self.row_reads.read(keys))
    }

    fn rebuild_index_rows(&self, derive: &mut IndexRows<'_>) -> Result<(), LogError> {
        let mut slot = self.writer.lock().map_err(|_| poisoned())?;
        let conn = self.writer_conn(&mut slot)?;
        let log = self.log;
        let run = |sql: &'static str, params: Vec<Param>| {
            let conn = conn.clone();
            self.db
                .on_runtime(async move { query(&conn, sql, &params).await })
        };
        let simple = |sql: &'static str| {
            let conn = conn.clone();
            self.db
                .on_runtime(async move { conn.batch_execute(sql).await.map_err(storage) })
        };
        simple("BEGIN")?;
        let rebuilt = (|| {
            run(
                "DELETE FROM tb_index_runs WHERE log = $1",
                vec![Box::new(log)],
            )?;
            let mut from = 0i64;
            loop {
                let page = run(
                    "SELECT idx, bytes FROM tb_entries WHERE log = $1 AND idx >= $2
                     ORDER BY idx LIMIT $3",
                    vec![Box::new(log), Box::new(from), Box::new(PAGE)],
                )?;
                let Some(last) = page.last() else { break };
                from = last.get::<_, i64>(0) + 1;
                let mut rows = Vec::new();
                for row in &page {
                    let index: i64 = row.get(0);
                    for (name, key) in derive(unsigned(index)?, row.get::<_, &[u8]>(1))? {
                        rows.push((name, key, index));
                    }
                }
                let runs = IndexRuns::of(rows.iter().map(|(n, k, i)| (*n, k.as_slice(), *i)))?;
                run(INSERT_INDEX_ROWS, runs.params(log))?;
            }
            Ok(())
        })();
        let end = if rebuilt.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        match (rebuilt, simple(end)) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), _) | (Ok(()), Err(e)) => {
                slot.conn = None;
                Err(e)
            }
        }
    }
}

fn poisoned() -> LogError {
    LogError::Storage("a lock of the database engine was poisoned by a panic".into())
}

/// Runs `sql` with `params` (as a prepared statement, cached per connection).
async fn query(conn: &ClientWrapper, sql: &str, params: &[Param]) -> Result<Vec<PgRow>, LogError> {
    let statement = conn.prepare_cached(sql).await.map_err(storage)?;
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    conn.query(&statement, &refs).await.map_err(storage)
}

/// `work` between BEGIN and COMMIT, or ROLLBACK when it fails.
async fn in_transaction(
    conn: &ClientWrapper,
    work: impl Future<Output = Result<(), LogError>>,
) -> Result<(), LogError> {
    conn.batch_execute("BEGIN").await.map_err(storage)?;
    match work.await {
        Ok(()) => conn.batch_execute("COMMIT").await.map_err(storage),
        Err(e) => {
            if let Err(rollback) = conn.batch_execute("ROLLBACK").await {
                tracing::warn!(error = %rollback, "rolling back a failed batch failed too");
            }
            Err(e)
        }
    }
}

/// A count, length or position as PostgreSQL's int4 (array subscripts are int4).
fn int4(n: usize) -> Result<i32, LogError> {
    i32::try_from(n)
        .map_err(|_| LogError::InvalidArgument(format!("{n} is beyond a database array's int4")))
}

/// Index rows as runs (schema migration 6): per index name and key, the entry indexes under
/// it in order, each once, as [`INSERT_INDEX_ROWS`] takes them.
#[derive(Debug, Default, PartialEq)]
struct IndexRuns {
    names: Vec<String>,
    keys: Vec<Vec<u8>>,
    /// Where each run's indexes start in `indexes`, from 1 (PostgreSQL's first subscript).
    starts: Vec<i32>,
    lens: Vec<i32>,
    indexes: Vec<i64>,
}

impl IndexRuns {
    /// Groups (name, key, entry index) rows into runs.
    fn of<'a>(
        rows: impl IntoIterator<Item = (&'a str, &'a [u8], i64)>,
    ) -> Result<IndexRuns, LogError> {
        let mut grouped: BTreeMap<(&str, &[u8]), Vec<i64>> = BTreeMap::new();
        for (name, key, index) in rows {
            grouped.entry((name, key)).or_default().push(index);
        }
        let mut runs = IndexRuns::default();
        for ((name, key), mut indexes) in grouped {
            indexes.sort_unstable();
            indexes.dedup();
            runs.names.push(name.to_owned());
            runs.keys.push(key.to_vec());
            runs.starts.push(int4(runs.indexes.len() + 1)?);
            runs.lens.push(int4(indexes.len())?);
            runs.indexes.extend(indexes);
        }
        Ok(runs)
    }

    /// [`INSERT_INDEX_ROWS`]'s parameters for log `log`.
    fn params(self, log: i32) -> Vec<Param> {
        vec![
            Box::new(log),
            Box::new(self.names),
            Box::new(self.keys),
            Box::new(self.starts),
            Box::new(self.lens),
            Box::new(self.indexes),
        ]
    }
}

/// A [`WriteSet`] as owned columns, ready to be sent to the database.
struct Batch {
    log: i32,
    entry_idx: Vec<i64>,
    entries: Vec<Vec<u8>>,
    index_runs: IndexRuns,
    hash_pos: Vec<i64>,
    hashes: Vec<Vec<u8>>,
    blob_idx: Vec<i64>,
    blob_digests: Vec<Vec<u8>>,
    blobs: Vec<Vec<u8>>,
    state: Vec<StateOp>,
    checkpoint_sizes: Vec<i64>,
    checkpoints: Vec<Vec<u8>>,
    state_size: Option<i64>,
    request_keys: Vec<Vec<u8>>,
    request_created: Vec<i64>,
    requests: Vec<Vec<u8>>,
    prune_requests_before: Option<i64>,
}

impl Batch {
    fn of(log: i32, set: &WriteSet<'_>) -> Result<Batch, LogError> {
        let from = signed(set.entries_from)?;
        let hashes_from = signed(set.hashes_from)?;
        let mut index_rows = Vec::with_capacity(set.index_rows.len());
        for (name, key, index) in &set.index_rows {
            index_rows.push((*name, key.as_slice(), signed(*index)?));
        }
        // One row per key, the last given winning as a later insert does in redb: PostgreSQL
        // refuses an upsert that touches one row twice.
        let mut by_size: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
        for (size, bytes) in &set.checkpoints {
            by_size.insert(signed(*size)?, bytes.to_vec());
        }
        let (checkpoint_sizes, checkpoints) = by_size.into_iter().unzip();
        let mut by_blob: BTreeMap<(i64, Vec<u8>), Vec<u8>> = BTreeMap::new();
        for (index, digest, bytes) in &set.blobs {
            by_blob.insert((signed(*index)?, digest.to_vec()), bytes.to_vec());
        }
        let mut blob_idx = Vec::with_capacity(by_blob.len());
        let mut blob_digests = Vec::with_capacity(by_blob.len());
        let mut blobs = Vec::with_capacity(by_blob.len());
        for ((index, digest), bytes) in by_blob {
            blob_idx.push(index);
            blob_digests.push(digest);
            blobs.push(bytes);
        }
        let mut by_key: BTreeMap<Vec<u8>, (i64, Vec<u8>)> = BTreeMap::new();
        for (key, created, record) in &set.requests {
            by_key.insert(key.to_vec(), (signed(*created)?, record.to_vec()));
        }
        let mut request_keys = Vec::with_capacity(by_key.len());
        let mut request_created = Vec::with_capacity(by_key.len());
        let mut requests = Vec::with_capacity(by_key.len());
        for (key, (created, record)) in by_key {
            request_keys.push(key);
            request_created.push(created);
            requests.push(record);
        }
        Ok(Batch {
            request_keys,
            request_created,
            requests,
            prune_requests_before: set.prune_requests_before.map(signed).transpose()?,
            log,
            entry_idx: (from..).take(set.entries.len()).collect(),
            entries: set.entries.iter().map(|e| e.to_vec()).collect(),
            index_runs: IndexRuns::of(index_rows)?,
            hash_pos: (hashes_from..).take(set.hashes.len()).collect(),
            hashes: set.hashes.iter().map(|h| h.to_vec()).collect(),
            blob_idx,
            blob_digests,
            blobs,
            state: set.state.iter().map(|op| (*op).clone()).collect(),
            checkpoint_sizes,
            checkpoints,
            state_size: set.state_size.map(signed).transpose()?,
        })
    }
}

/// Writes `batch` in one transaction, and moves the log's size from `expected` to `new_size`:
/// refused ([`LogError::Superseded`]) unless the log is still at `expected`.
///
/// The statements go in one flight, sent whole before the first answer is awaited (the server
/// runs them in the order sent): BEGIN, every table's rows (one statement per table; the state's
/// patched rows patched where they are, by `tb_patch`), the prune, the size move and COMMIT.
/// The writer is the one thread every acknowledged write goes through, and on a busy machine
/// each wait for an answer is also a wait for a core: one wait per batch instead of one per
/// statement.
///
/// A statement that fails aborts the transaction on the server, which ignores what follows and
/// answers COMMIT by rolling back; so the batch counts as committed only if every statement
/// succeeded. The size move fails (it does not merely match no row) when the log has moved, so
/// that a superseded writer's COMMIT rolls back too.
async fn write_batch(
    conn: &ClientWrapper,
    batch: Batch,
    expected: u64,
    new_size: u64,
) -> Result<(), LogError> {
    let written = send_batch(conn, batch, expected, new_size).await;
    if written.is_err()
        && let Err(e) = conn.batch_execute("ROLLBACK").await
    {
        tracing::warn!(error = %e, "rolling back a failed batch failed too");
    }
    written
}

const READ_REQUEST: &str = "SELECT created, record FROM tb_requests WHERE log = $1 AND key = $2";
const INSERT_ENTRIES: &str = "INSERT INTO tb_entries (log, idx, bytes)
     SELECT $1, * FROM unnest($2::int8[], $3::bytea[])";
/// Writes index runs ([`IndexRuns`]): run i is named $2[i], keyed $3[i], and holds the $5[i]
/// entry indexes of $6 from position $4[i] on. Grouped here rather than by the server, which
/// spent more on sorting and aggregating a batch's rows than on storing them.
const INSERT_INDEX_ROWS: &str = "INSERT INTO tb_index_runs (log, name, key, first, idxs)
     SELECT $1, r.name, r.key, ($6::int8[])[r.start], ($6::int8[])[r.start:r.start + r.len - 1]
     FROM unnest($2::text[], $3::bytea[], $4::int4[], $5::int4[]) AS r(name, key, start, len)";
const INSERT_HASHES: &str = "INSERT INTO tb_hashes (log, pos, hash)
     SELECT $1, * FROM unnest($2::int8[], $3::bytea[])
     ON CONFLICT (log, pos) DO UPDATE SET hash = EXCLUDED.hash";
const INSERT_BLOBS: &str = "INSERT INTO tb_blobs (log, idx, digest, bytes)
     SELECT $1, * FROM unnest($2::int8[], $3::bytea[], $4::bytea[])
     ON CONFLICT (log, idx, digest) DO UPDATE SET bytes = EXCLUDED.bytes";
const INSERT_CHECKPOINTS: &str = "INSERT INTO tb_checkpoints (log, size, bytes)
     SELECT $1, * FROM unnest($2::int8[], $3::bytea[])
     ON CONFLICT (log, size) DO UPDATE SET bytes = EXCLUDED.bytes";
const INSERT_REQUESTS: &str = "INSERT INTO tb_requests (log, key, created, record)
     SELECT $1, * FROM unnest($2::bytea[], $3::int8[], $4::bytea[])
     ON CONFLICT (log, key) DO UPDATE SET created = EXCLUDED.created, record = EXCLUDED.record";
/// Patches rows where they are ([`Patches`]): row i ($2, $3: kind, key) gets the $7[i]
/// patches of $8 (offsets) and $9 (bytes) from position $6[i] on; a row not there yet starts
/// as $4[i] bytes of $5[i]. Only the log's writer writes its state, so nothing comes between
/// the update and the insert of the rows it did not find.
const PATCH_STATE: &str = "WITH p AS (
         SELECT * FROM unnest($2::int2[], $3::bytea[], $4::int4[], $5::int4[], $6::int4[],
                              $7::int4[]) AS p(kind, key, len, fill, start, n)),
     patched AS (
         UPDATE tb_state s
         SET value = tb_patch(s.value, ($8::int4[])[p.start:p.start + p.n - 1],
                              ($9::int4[])[p.start:p.start + p.n - 1])
         FROM p WHERE s.log = $1 AND s.kind = p.kind AND s.key = p.key
         RETURNING s.kind, s.key)
     INSERT INTO tb_state (log, kind, key, value)
     SELECT $1, p.kind, p.key,
            tb_patch(decode(repeat(lpad(to_hex(p.fill), 2, '0'), p.len), 'hex'),
                     ($8::int4[])[p.start:p.start + p.n - 1],
                     ($9::int4[])[p.start:p.start + p.n - 1])
     FROM p WHERE NOT EXISTS (SELECT 1 FROM patched d WHERE d.kind = p.kind AND d.key = p.key)";
const DELETE_STATE: &str = "DELETE FROM tb_state
     WHERE log = $1 AND (kind, key) IN (SELECT * FROM unnest($2::int2[], $3::bytea[]))";
const PUT_STATE: &str = "INSERT INTO tb_state (log, kind, key, value)
     SELECT $1, * FROM unnest($2::int2[], $3::bytea[], $4::bytea[])
     ON CONFLICT (log, kind, key) DO UPDATE SET value = EXCLUDED.value";
/// Removes request rows made before $2 (none when it is null), at most $3 of them.
const PRUNE_REQUESTS: &str = "DELETE FROM tb_requests WHERE (log, key) IN (
     SELECT log, key FROM tb_requests WHERE log = $1 AND created < $2
     ORDER BY created LIMIT $3)";
/// Moves the log from size $4 to $2, or fails with division_by_zero when it is not at $4 (a
/// failure, not an empty result, so that the transaction aborts).
const MOVE_SIZE: &str = "WITH moved AS (
         UPDATE tb_logs SET size = $2, state_size = coalesce($3, state_size)
         WHERE id = $1 AND size = $4 RETURNING id)
     SELECT 1 / count(*) FROM moved";

/// A statement and its parameters, sent in a flight.
struct Sent(tokio_postgres::Statement, Vec<Param>);

impl Sent {
    async fn prepare(
        conn: &ClientWrapper,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<Sent, LogError> {
        Ok(Sent(
            conn.prepare_cached(sql).await.map_err(storage)?,
            params,
        ))
    }

    /// Sends the statement when first polled (tokio-postgres sends a request before it awaits
    /// its answer): futures polled in order reach the server in order.
    async fn run(&self, conn: &ClientWrapper) -> Result<Vec<PgRow>, tokio_postgres::Error> {
        let refs: Vec<&(dyn ToSql + Sync)> = self
            .1
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        conn.query(&self.0, &refs).await
    }
}

/// The first error of statements run in order: the cause; those after it only say the
/// transaction was aborted.
fn first_error<T>(
    results: impl IntoIterator<Item = Result<T, tokio_postgres::Error>>,
) -> Result<Vec<T>, LogError> {
    results.into_iter().map(|r| r.map_err(storage)).collect()
}

async fn send_batch(
    conn: &ClientWrapper,
    batch: Batch,
    expected: u64,
    new_size: u64,
) -> Result<(), LogError> {
    let log = batch.log;
    let StateChanges { gone, put, patches } = StateChanges::of(&batch.state)?;
    // Prepared before anything is sent (cached per connection: a round trip the first time
    // only), so that no statement of the flight waits for its Parse while a later one goes
    // ahead.
    let statements = [
        Sent::prepare(
            conn,
            INSERT_ENTRIES,
            vec![
                Box::new(log),
                Box::new(batch.entry_idx),
                Box::new(batch.entries),
            ],
        ),
        Sent::prepare(conn, INSERT_INDEX_ROWS, batch.index_runs.params(log)),
        Sent::prepare(
            conn,
            INSERT_HASHES,
            vec![
                Box::new(log),
                Box::new(batch.hash_pos),
                Box::new(batch.hashes),
            ],
        ),
        Sent::prepare(
            conn,
            INSERT_BLOBS,
            vec![
                Box::new(log),
                Box::new(batch.blob_idx),
                Box::new(batch.blob_digests),
                Box::new(batch.blobs),
            ],
        ),
        Sent::prepare(
            conn,
            INSERT_CHECKPOINTS,
            vec![
                Box::new(log),
                Box::new(batch.checkpoint_sizes),
                Box::new(batch.checkpoints),
            ],
        ),
        Sent::prepare(
            conn,
            INSERT_REQUESTS,
            vec![
                Box::new(log),
                Box::new(batch.request_keys),
                Box::new(batch.request_created),
                Box::new(batch.requests),
            ],
        ),
        Sent::prepare(
            conn,
            DELETE_STATE,
            vec![Box::new(log), Box::new(gone.0), Box::new(gone.1)],
        ),
        Sent::prepare(
            conn,
            PUT_STATE,
            vec![
                Box::new(log),
                Box::new(put.0),
                Box::new(put.1),
                Box::new(put.2),
            ],
        ),
        Sent::prepare(conn, PATCH_STATE, patches.params(log)),
        Sent::prepare(
            conn,
            PRUNE_REQUESTS,
            vec![
                Box::new(log),
                Box::new(batch.prune_requests_before),
                Box::new(PRUNED_PER_WRITE as i64),
            ],
        ),
        Sent::prepare(
            conn,
            MOVE_SIZE,
            vec![
                Box::new(log),
                Box::new(signed(new_size)?),
                Box::new(batch.state_size),
                Box::new(signed(expected)?),
            ],
        ),
    ];
    let mut prepared = Vec::with_capacity(statements.len());
    for sent in statements {
        prepared.push(sent.await?);
    }
    let [
        entries,
        index_rows,
        hashes,
        blobs,
        checkpoints,
        requests,
        delete,
        upsert,
        patch,
        prune,
        moved,
    ] = &prepared[..]
    else {
        return Err(LogError::Storage(
            "internal: a flight lost a statement".into(),
        ));
    };
    let (begun, e, i, h, b, c, r, d, u, pa, pr, m, committed) = futures::join!(
        conn.batch_execute("BEGIN"),
        entries.run(conn),
        index_rows.run(conn),
        hashes.run(conn),
        blobs.run(conn),
        checkpoints.run(conn),
        requests.run(conn),
        delete.run(conn),
        upsert.run(conn),
        patch.run(conn),
        prune.run(conn),
        moved.run(conn),
        conn.batch_execute("COMMIT"),
    );
    begun.map_err(storage)?;
    if let Err(e) = &pa
        && e.code() == Some(&tokio_postgres::error::SqlState::ARRAY_SUBSCRIPT_ERROR)
    {
        // tb_patch's set_byte beyond the row: what redb's engine reports as corrupt too.
        return Err(LogError::Corrupt(format!(
            "a state row is shorter than a patch of it: {e}"
        )));
    }
    first_error([e, i, h, b, c, r, d, u, pa, pr])?;
    if let Err(e) = m {
        return Err(match e.code() {
            Some(&tokio_postgres::error::SqlState::DIVISION_BY_ZERO) => {
                LogError::Superseded(format!("the log is no longer at size {expected}"))
            }
            _ => storage(e),
        });
    }
    committed.map_err(storage)
}

fn key_of(op: &StateOp) -> (u8, &[u8]) {
    match op {
        StateOp::Put { kind, key, .. }
        | StateOp::Delete { kind, key }
        | StateOp::Patch { kind, key, .. } => (*kind, key.as_slice()),
    }
}

/// What a batch's state ops make of each row they touch.
#[derive(Debug, PartialEq)]
enum Change {
    Gone,
    Set(Vec<u8>),
    /// Every op on the row a patch: it becomes what is stored (or `len` bytes of `fill`)
    /// with the patches (offset, byte) applied in order, which only the server knows.
    Patched {
        len: usize,
        fill: u8,
        patches: Vec<(usize, u8)>,
    },
}

/// A batch's state ops as rows to delete, rows to set and rows to patch where they are.
#[derive(Debug, Default, PartialEq)]
struct StateChanges {
    /// Kinds and keys.
    gone: (Vec<i16>, Vec<Vec<u8>>),
    /// Kinds, keys and values.
    put: (Vec<i16>, Vec<Vec<u8>>, Vec<Vec<u8>>),
    patches: Patches,
}

/// Rows patched where they are, as [`PATCH_STATE`] takes them.
#[derive(Debug, Default, PartialEq)]
struct Patches {
    kinds: Vec<i16>,
    keys: Vec<Vec<u8>>,
    lens: Vec<i32>,
    fills: Vec<i32>,
    /// Where each row's patches start in `offsets` and `bytes`, from 1.
    starts: Vec<i32>,
    counts: Vec<i32>,
    offsets: Vec<i32>,
    bytes: Vec<i32>,
}

impl StateChanges {
    /// Applies `ops` in order: a row a put or delete touched first ends as known here; a row
    /// only ever patched is patched by the server, from what it holds.
    fn of(ops: &[StateOp]) -> Result<StateChanges, LogError> {
        let mut touched: BTreeMap<(u8, &[u8]), Change> = BTreeMap::new();
        for op in ops {
            let key = key_of(op);
            let before = touched.remove(&key);
            let change = match (op, before) {
                (StateOp::Put { value, .. }, _) => Change::Set(value.clone()),
                (StateOp::Delete { .. }, _) => Change::Gone,
                (StateOp::Patch { .. }, Some(Change::Set(value))) => {
                    Change::Set(op.patched(Some(value))?)
                }
                (StateOp::Patch { .. }, Some(Change::Gone)) => Change::Set(op.patched(None)?),
                (
                    StateOp::Patch { offset, byte, .. },
                    Some(Change::Patched {
                        len,
                        fill,
                        mut patches,
                    }),
                ) => {
                    patches.push((*offset, *byte));
                    Change::Patched { len, fill, patches }
                }
                (
                    StateOp::Patch {
                        len,
                        fill,
                        offset,
                        byte,
                        ..
                    },
                    None,
                ) => Change::Patched {
                    len: *len,
                    fill: *fill,
                    patches: vec![(*offset, *byte)],
                },
            };
            touched.insert(key, change);
        }
        let mut changes = StateChanges::default();
        for ((kind, key), change) in touched {
            let kind = i16::from(kind);
            match change {
                Change::Gone => {
                    changes.gone.0.push(kind);
                    changes.gone.1.push(key.to_vec());
                }
                Change::Set(value) => {
                    changes.put.0.push(kind);
                    changes.put.1.push(key.to_vec());
                    changes.put.2.push(value);
                }
                Change::Patched { len, fill, patches } => {
                    changes.patches.push(kind, key, len, fill, &patches)?
                }
            }
        }
        Ok(changes)
    }
}

impl Patches {
    fn push(
        &mut self,
        kind: i16,
        key: &[u8],
        len: usize,
        fill: u8,
        patches: &[(usize, u8)],
    ) -> Result<(), LogError> {
        self.kinds.push(kind);
        self.keys.push(key.to_vec());
        self.lens.push(int4(len)?);
        self.fills.push(i32::from(fill));
        self.starts.push(int4(self.offsets.len() + 1)?);
        self.counts.push(int4(patches.len())?);
        for (offset, byte) in patches {
            self.offsets.push(int4(*offset)?);
            self.bytes.push(i32::from(*byte));
        }
        Ok(())
    }

    /// [`PATCH_STATE`]'s parameters for log `log`.
    fn params(self, log: i32) -> Vec<Param> {
        vec![
            Box::new(log),
            Box::new(self.kinds),
            Box::new(self.keys),
            Box::new(self.lens),
            Box::new(self.fills),
            Box::new(self.starts),
            Box::new(self.counts),
            Box::new(self.offsets),
            Box::new(self.bytes),
        ]
    }
}

/// A pooled connection for statements of a caller's own (the federation's tables beside the
/// logs), run on the calling thread. A transaction begun on it and not committed is rolled back
/// when it is dropped.
pub struct PgSession {
    db: Arc<PgDatabase>,
    conn: Option<Object>,
    in_transaction: bool,
}

impl PgDatabase {
    /// A connection from the pool, for [`PgSession`]'s statements.
    pub fn session(self: &Arc<Self>) -> Result<PgSession, LogError> {
        let pool = self.pool.clone();
        let conn = self.on_runtime(async move { pool.get().await.map_err(storage) })?;
        Ok(PgSession {
            db: self.clone(),
            conn: Some(conn),
            in_transaction: false,
        })
    }
}

impl PgDatabase {
    /// Records that this process sequences the log `name` and answers the node's other
    /// processes at `url`.
    pub fn announce_sequencer(self: &Arc<Self>, name: &str, url: &str) -> Result<(), LogError> {
        self.session()?.query(
            "INSERT INTO tb_sequencer (log, url) VALUES ($1, $2)
             ON CONFLICT (log) DO UPDATE SET url = EXCLUDED.url, since = now()",
            &[&name, &url],
        )?;
        Ok(())
    }

    /// Where the sequencer of the log `name` last said it answers, if one did.
    pub fn sequencer_url(self: &Arc<Self>, name: &str) -> Result<Option<String>, LogError> {
        let rows = self
            .session()?
            .query("SELECT url FROM tb_sequencer WHERE log = $1", &[&name])?;
        Ok(rows.first().map(|r| r.get(0)))
    }
}

impl PgSession {
    fn conn(&self) -> Result<&Object, LogError> {
        self.conn
            .as_ref()
            .ok_or_else(|| LogError::Storage("the session has ended".into()))
    }

    /// Runs `sql` (prepared once per connection) with `params`.
    pub fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<PgRow>, LogError> {
        let conn = self.conn()?;
        futures::executor::block_on(async {
            let statement = conn.prepare_cached(sql).await.map_err(storage)?;
            conn.query(&statement, params).await.map_err(storage)
        })
    }

    /// Begins a transaction that holds an advisory lock on `parts` (within the node's schema)
    /// until it ends: every other transaction locking the same parts waits for it.
    pub fn begin_locked(&mut self, parts: &[&str]) -> Result<(), LogError> {
        let mut all = vec!["session", self.db.schema.as_str()];
        all.extend_from_slice(parts);
        let key = lock_key(&all);
        let conn = self.conn()?;
        futures::executor::block_on(conn.batch_execute("BEGIN")).map_err(storage)?;
        self.in_transaction = true;
        self.query("SELECT pg_advisory_xact_lock($1)", &[&key])?;
        Ok(())
    }

    /// Commits the transaction begun.
    pub fn commit(&mut self) -> Result<(), LogError> {
        let conn = self.conn()?;
        let committed = futures::executor::block_on(conn.batch_execute("COMMIT")).map_err(storage);
        self.in_transaction = false;
        committed
    }
}

impl Drop for PgSession {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.in_transaction {
            return;
        }
        self.db.handle.spawn(async move {
            if let Err(e) = conn.batch_execute("ROLLBACK").await {
                tracing::warn!(error = %e, "ending a session's transaction failed; closing it");
                drop(Object::take(conn));
            }
        });
    }
}

/// A read-only transaction on a pooled connection, ended (and the connection given back) when
/// dropped.
struct ReadTxn {
    db: Arc<PgDatabase>,
    /// A snapshot's connection, in its transaction from the start; the sequencer's reads take
    /// one from the pool at their first query (most acts read nothing under the lock).
    conn: OnceLock<Arc<Object>>,
    log: i32,
    /// Whether a transaction was begun (and is to be rolled back): not for the sequencer's
    /// reads, each its own.
    in_transaction: bool,
}

impl ReadTxn {
    fn query(&self, sql: &'static str, mut params: Vec<Param>) -> Result<Vec<PgRow>, LogError> {
        let conn = match self.conn.get() {
            Some(conn) => conn.clone(),
            None if !self.in_transaction => {
                let pool = self.db.pool.clone();
                let conn = self
                    .db
                    .on_runtime(async move { pool.get().await.map_err(storage) })?;
                self.conn.get_or_init(|| Arc::new(conn)).clone()
            }
            None => return Err(LogError::Storage("the snapshot has ended".into())),
        };
        params.insert(0, Box::new(self.log));
        // On the calling thread: the client's futures need no runtime of their own (the
        // connection's task runs on the engine's), and a hop to the runtime and back costs
        // more than the query on loopback.
        futures::executor::block_on(query(&conn, sql, &params))
    }
}

impl Drop for ReadTxn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.in_transaction {
            return;
        }
        // Ended on the runtime without waiting: the connection goes back to the pool once its
        // transaction is over, or is closed if that fails.
        self.db.handle.spawn(async move {
            if let Err(e) = conn.batch_execute("ROLLBACK").await {
                tracing::warn!(error = %e, "ending a read transaction failed; closing its connection");
                if let Ok(conn) = Arc::try_unwrap(conn) {
                    drop(Object::take(conn));
                }
            }
        });
    }
}

fn hash32(bytes: &[u8]) -> Result<[u8; 32], LogError> {
    bytes
        .try_into()
        .map_err(|_| LogError::Corrupt(format!("a stored hash of {} bytes", bytes.len())))
}

struct PgSnapshot {
    txn: ReadTxn,
    size: u64,
}

impl Snapshot for PgSnapshot {
    fn size(&self) -> u64 {
        self.size
    }

    fn request(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        let rows = self.txn.query(READ_REQUEST, vec![Box::new(key.to_vec())])?;
        rows.first()
            .map(|r| Ok((unsigned(r.get(0))?, r.get(1))))
            .transpose()
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        let Ok(index) = i64::try_from(index) else {
            return Ok(None);
        };
        let rows = self.txn.query(
            "SELECT bytes FROM tb_entries WHERE log = $1 AND idx = $2",
            vec![Box::new(index)],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn entries(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, LogError> {
        let rows = self.txn.query(
            "SELECT idx, bytes FROM tb_entries WHERE log = $1 AND idx >= $2 AND idx < $3
             ORDER BY idx",
            vec![Box::new(signed(range.start)?), Box::new(signed(range.end)?)],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (row, want) in rows.iter().zip(range.clone()) {
            if unsigned(row.get(0))? != want {
                return Err(LogError::Corrupt(format!("entry {want} is missing")));
            }
            out.push(row.get(1));
        }
        if out.len() as u64 != range.end.saturating_sub(range.start) {
            return Err(LogError::Corrupt(format!(
                "entries {}..{} are incomplete",
                range.start, range.end
            )));
        }
        Ok(out)
    }

    fn hashes(&self, positions: &[u64]) -> Result<Vec<Option<[u8; 32]>>, LogError> {
        // Positions beyond a bigint hold nothing.
        let wanted: Vec<i64> = positions
            .iter()
            .filter_map(|&p| i64::try_from(p).ok())
            .collect();
        let rows = self.txn.query(
            "SELECT pos, hash FROM tb_hashes WHERE log = $1 AND pos = ANY($2)",
            vec![Box::new(wanted)],
        )?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            found.insert(unsigned(row.get(0))?, hash32(row.get(1))?);
        }
        Ok(positions.iter().map(|p| found.get(p).copied()).collect())
    }

    fn blob(&self, index: u64, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, LogError> {
        let Ok(index) = i64::try_from(index) else {
            return Ok(None);
        };
        let rows = self.txn.query(
            "SELECT bytes FROM tb_blobs WHERE log = $1 AND idx = $2 AND digest = $3",
            vec![Box::new(index), Box::new(digest.to_vec())],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn lookup(&self, name: &str, key: &[u8]) -> Result<Vec<u64>, LogError> {
        let rows = self.txn.query(
            "SELECT i FROM tb_index_runs, unnest(idxs) AS i
             WHERE log = $1 AND name = $2 AND key = $3 ORDER BY i",
            vec![Box::new(name.to_owned()), Box::new(key.to_vec())],
        )?;
        rows.iter().map(|r| unsigned(r.get(0))).collect()
    }

    fn last_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        let rows = self.txn.query(
            "SELECT size, bytes FROM tb_checkpoints WHERE log = $1 ORDER BY size DESC LIMIT 1",
            Vec::new(),
        )?;
        rows.first()
            .map(|r| Ok((unsigned(r.get(0))?, r.get(1))))
            .transpose()
    }

    fn checkpoints_from(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        // No size is beyond a bigint: nothing is stored from there on.
        let Ok(from) = i64::try_from(from) else {
            return Ok(Vec::new());
        };
        let rows = self.txn.query(
            "SELECT size, bytes FROM tb_checkpoints WHERE log = $1 AND size >= $2
             ORDER BY size LIMIT $3",
            vec![
                Box::new(from),
                Box::new(i64::try_from(limit).unwrap_or(i64::MAX)),
            ],
        )?;
        rows.iter()
            .map(|r| Ok((unsigned(r.get(0))?, r.get(1))))
            .collect()
    }
}

struct PgState {
    txn: ReadTxn,
    size: u64,
}

fn kind_of(row: &PgRow) -> Result<u8, LogError> {
    u8::try_from(row.get::<_, i16>(0))
        .map_err(|_| LogError::Corrupt("a state row's kind is beyond a byte".into()))
}

impl StateView for PgState {
    fn size(&self) -> u64 {
        self.size
    }

    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError> {
        let rows = self.txn.query(
            "SELECT value FROM tb_state WHERE log = $1 AND kind = $2 AND key = $3",
            vec![Box::new(i16::from(kind)), Box::new(key.to_vec())],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn scan(
        &self,
        kind: u8,
        from: &[u8],
        each: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), LogError> {
        let mut page = self.txn.query(
            "SELECT key, value FROM tb_state WHERE log = $1 AND kind = $2 AND key >= $3
             ORDER BY key LIMIT $4",
            vec![
                Box::new(i16::from(kind)),
                Box::new(from.to_vec()),
                Box::new(PAGE),
            ],
        )?;
        loop {
            for row in &page {
                if !each(row.get(0), row.get(1)) {
                    return Ok(());
                }
            }
            let Some(last) = page.last().filter(|_| page.len() as i64 == PAGE) else {
                return Ok(());
            };
            let after: Vec<u8> = last.get(0);
            page = self.txn.query(
                "SELECT key, value FROM tb_state WHERE log = $1 AND kind = $2 AND key > $3
                 ORDER BY key LIMIT $4",
                vec![Box::new(i16::from(kind)), Box::new(after), Box::new(PAGE)],
            )?;
        }
    }

    fn last(&self, kind: u8) -> Result<Option<Row>, LogError> {
        let rows = self.txn.query(
            "SELECT key, value FROM tb_state WHERE log = $1 AND kind = $2
             ORDER BY key DESC LIMIT 1",
            vec![Box::new(i16::from(kind))],
        )?;
        Ok(rows.first().map(|r| (r.get(0), r.get(1))))
    }

    fn rows(&self) -> Result<Box<dyn Iterator<Item = Result<KindRow, LogError>> + '_>, LogError> {
        Ok(Box::new(AllRows {
            state: self,
            after: None,
            page: VecDeque::new(),
            done: false,
        }))
    }
}

/// Every state row in (kind, key) order, a page at a time.
struct AllRows<'a> {
    state: &'a PgState,
    after: Option<(i16, Vec<u8>)>,
    page: VecDeque<KindRow>,
    done: bool,
}

impl AllRows<'_> {
    fn fetch(&mut self) -> Result<(), LogError> {
        let rows = match self.after.take() {
            None => self.state.txn.query(
                "SELECT kind, key, value FROM tb_state WHERE log = $1
                 ORDER BY kind, key LIMIT $2",
                vec![Box::new(PAGE)],
            )?,
            Some((kind, key)) => self.state.txn.query(
                "SELECT kind, key, value FROM tb_state WHERE log = $1 AND (kind, key) > ($2, $3)
                 ORDER BY kind, key LIMIT $4",
                vec![Box::new(kind), Box::new(key), Box::new(PAGE)],
            )?,
        };
        self.done = (rows.len() as i64) < PAGE;
        for row in &rows {
            self.page.push_back((kind_of(row)?, row.get(1), row.get(2)));
        }
        if let Some((kind, key, _)) = self.page.back() {
            self.after = Some((i16::from(*kind), key.clone()));
        }
        Ok(())
    }
}

impl Iterator for AllRows<'_> {
    type Item = Result<KindRow, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty()
            && !self.done
            && let Err(e) = self.fetch()
        {
            self.done = true;
            return Some(Err(e));
        }
        self.page.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn patch(key: &[u8], offset: usize, byte: u8) -> StateOp {
        StateOp::Patch {
            kind: 3,
            key: key.to_vec(),
            len: 4,
            fill: 0xff,
            offset,
            byte,
        }
    }

    #[test]
    fn rows_only_patched_are_left_to_the_server_and_the_rest_are_known_here() {
        let gone = || StateOp::Delete {
            kind: 3,
            key: b"d".to_vec(),
        };
        let ops = [
            patch(b"p", 1, 7),
            put(b"x"),
            patch(b"s", 0, 1),
            patch(b"p", 3, 9),
            StateOp::Put {
                kind: 3,
                key: b"s".to_vec(),
                value: b"abcd".to_vec(),
            },
            patch(b"s", 2, b'Z'),
            gone(),
            patch(b"d", 0, 5),
            patch(b"q", 2, 4),
        ];
        let changes = StateChanges::of(&ops).unwrap();
        assert_eq!(changes.gone, (vec![], vec![]));
        // "k" (put), "d" (deleted, then patched from nothing), "s" (put, then patched).
        let mut put: Vec<_> = (0..changes.put.0.len())
            .map(|i| (changes.put.1[i].clone(), changes.put.2[i].clone()))
            .collect();
        put.sort();
        assert_eq!(
            put,
            [
                (b"d".to_vec(), vec![5, 0xff, 0xff, 0xff]),
                (b"k".to_vec(), b"x".to_vec()),
                (b"s".to_vec(), b"abZd".to_vec()),
            ]
        );
        assert_eq!(
            changes.patches,
            Patches {
                kinds: vec![3, 3],
                keys: vec![b"p".to_vec(), b"q".to_vec()],
                lens: vec![4, 4],
                fills: vec![0xff, 0xff],
                starts: vec![1, 3],
                counts: vec![2, 1],
                offsets: vec![1, 3, 2],
                bytes: vec![7, 9, 4],
            }
        );
        let deleted = StateChanges::of(&[patch(b"d", 0, 5), gone()]).unwrap();
        assert_eq!(deleted.gone, (vec![3], vec![b"d".to_vec()]));
        assert_eq!(deleted.patches, Patches::default());
    }

    #[test]
    fn index_rows_become_one_run_per_name_and_key_in_order_each_once() {
        let rows = [
            ("type", &b"t"[..], 7),
            ("id", &b"b"[..], 7),
            ("type", &b"t"[..], 5),
            ("id", &b"a"[..], 5),
            ("type", &b"t"[..], 7),
        ];
        let runs = IndexRuns::of(rows).unwrap();
        assert_eq!(
            runs,
            IndexRuns {
                names: vec!["id".into(), "id".into(), "type".into()],
                keys: vec![b"a".to_vec(), b"b".to_vec(), b"t".to_vec()],
                starts: vec![1, 2, 3],
                lens: vec![1, 1, 2],
                indexes: vec![5, 7, 5, 7],
            }
        );
        assert_eq!(IndexRuns::of([]).unwrap(), IndexRuns::default());
    }

    fn put(value: &[u8]) -> StateOp {
        StateOp::Put {
            kind: 1,
            key: b"k".to_vec(),
            value: value.to_vec(),
        }
    }

    /// The log `region`, opened to write.
    fn region(db: &Arc<PgDatabase>) -> PgEngine {
        db.open_log("region", Contents::Entries, Suite::Ed25519)
            .unwrap()
            .0
    }

    /// Runs `sql` in the engine's schema on a connection of its own.
    fn sql(db: &Arc<PgDatabase>, sql: &'static str) -> Vec<PgRow> {
        let config = db.dial.clone();
        db.on_runtime(async move {
            let conn = connect(&config).await?;
            conn.query(sql, &[]).await.map_err(storage)
        })
        .unwrap()
    }

    /// Runs `sql` (several statements) in the engine's schema on a connection of its own.
    fn batch(db: &Arc<PgDatabase>, sql: &'static str) {
        let config = db.dial.clone();
        db.on_runtime(async move {
            let conn = connect(&config).await?;
            conn.batch_execute(sql).await.map_err(storage)
        })
        .unwrap()
    }

    #[test]
    fn index_rows_of_schema_version_5_become_runs_that_answer_the_same_lookups() {
        let Some(config) = crate::storage::test_postgres() else {
            return;
        };
        let db = PgDatabase::connect(&config).unwrap();
        let engine = region(&db);
        drop(engine);
        // The tables as version 5 left them (later migrations undone), holding rows: 3,000
        // entries under one key, and every seventh under a key of its own.
        batch(
            &db,
            "DROP TABLE tb_index_runs;
             DROP FUNCTION tb_patch;
             DELETE FROM tb_migrations WHERE version >= 6;
             CREATE TABLE tb_index_rows (
                 log integer NOT NULL, name text NOT NULL, key bytea NOT NULL, idx bigint NOT NULL,
                 PRIMARY KEY (log, name, key, idx)
             );
             INSERT INTO tb_index_rows
                 SELECT id, 'kind', 'cert.issued', i FROM tb_logs, generate_series(0, 2999) i;
             INSERT INTO tb_index_rows
                 SELECT id, 'id', convert_to('A' || i, 'UTF8'), i
                 FROM tb_logs, generate_series(0, 2999, 7) i;",
        );
        drop(db);
        let db = PgDatabase::connect(&config).unwrap();
        let engine = region(&db);
        let snapshot = engine.read().unwrap();
        assert_eq!(
            snapshot.lookup("kind", b"cert.issued").unwrap(),
            (0..3000).collect::<Vec<u64>>()
        );
        assert_eq!(snapshot.lookup("id", b"A2996").unwrap(), vec![2996]);
        assert_eq!(snapshot.lookup("id", b"A2997").unwrap(), Vec::<u64>::new());
        let runs = sql(
            &db,
            "SELECT count(*), max(cardinality(idxs)) FROM tb_index_runs WHERE name = 'kind'",
        );
        assert_eq!(runs[0].get::<_, i64>(0), 3);
        assert_eq!(runs[0].get::<_, i32>(1), 1024);
        let gone = sql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'tb_index_rows'
             AND schemaname = current_schema()",
        );
        assert_eq!(gone[0].get::<_, i64>(0), 0);
    }

    #[test]
    fn reads_made_at_once_each_get_their_own_rows_as_of_one_commit() {
        let Some(config) = crate::storage::test_postgres() else {
            return;
        };
        let db = PgDatabase::connect(&config).unwrap();
        let engine = region(&db);
        // Rows (1, "k0") … (1, "k199"), each holding its own key.
        let ops: Vec<StateOp> = (0..200)
            .map(|i| StateOp::Put {
                kind: 1,
                key: format!("k{i}").into_bytes(),
                value: format!("k{i}").into_bytes(),
            })
            .collect();
        engine
            .write(&WriteSet {
                entries: vec![b"a"],
                hashes: vec![[1; 32]],
                state: ops.iter().collect(),
                size: Some(1),
                state_size: Some(1),
                ..WriteSet::default()
            })
            .unwrap();
        // 64 threads at once, each asking for keys of its own (some absent, one none at all),
        // many times: whatever statements they share, each gets its rows in its order.
        std::thread::scope(|scope| {
            for t in 0..64usize {
                let engine = &engine;
                scope.spawn(move || {
                    for round in 0..20usize {
                        let keys: Vec<(u8, Vec<u8>)> = (0..t % 9)
                            .map(|j| {
                                (
                                    1,
                                    format!("k{}", (t * 7 + j * 31 + round) % 230).into_bytes(),
                                )
                            })
                            .collect();
                        let (size, rows) = engine.rows_at(&keys).unwrap();
                        assert_eq!(size, 1);
                        assert_eq!(rows.len(), keys.len());
                        for ((_, key), row) in keys.iter().zip(rows) {
                            let held = std::str::from_utf8(key).unwrap()[1..]
                                .parse::<usize>()
                                .unwrap()
                                < 200;
                            assert_eq!(row, held.then(|| key.clone()));
                        }
                    }
                });
            }
        });
    }

    /// Writes two entries (and the three hashes of their tree) to a new log `region`.
    fn two_entries(db: &Arc<PgDatabase>) {
        let engine = region(db);
        engine
            .write(&WriteSet {
                entries: vec![b"a", b"b"],
                hashes: vec![[1; 32], [2; 32], [3; 32]],
                size: Some(2),
                ..WriteSet::default()
            })
            .unwrap();
    }

    /// Opening the log `region` is refused as corrupt, saying `why`.
    fn refused_as_corrupt(db: &Arc<PgDatabase>, why: &str) {
        let refused = db
            .open_log("region", Contents::Entries, Suite::Ed25519)
            .err()
            .unwrap();
        assert!(
            matches!(&refused, LogError::Corrupt(m) if m.contains(why)),
            "{refused}"
        );
    }

    #[test]
    fn a_log_whose_last_entry_or_hash_is_missing_is_refused_at_open() {
        let Some(config) = crate::storage::test_postgres() else {
            return;
        };
        let db = PgDatabase::connect(&config).unwrap();
        two_entries(&db);
        batch(&db, "DELETE FROM tb_entries WHERE idx = 1");
        refused_as_corrupt(&db, "entries end at 1");
        batch(
            &db,
            "INSERT INTO tb_entries (log, idx, bytes) SELECT id, 1, 'b' FROM tb_logs;
             DELETE FROM tb_hashes WHERE pos = 2",
        );
        refused_as_corrupt(&db, "hashes but they end at 2");
        batch(
            &db,
            "INSERT INTO tb_hashes (log, pos, hash) SELECT id, 2, '\\x03' FROM tb_logs",
        );
        region(&db);
    }

    #[test]
    fn a_batch_after_the_log_moved_under_its_writer_is_rolled_back_whole() {
        let Some(config) = crate::storage::test_postgres() else {
            return;
        };
        let db = PgDatabase::connect(&config).unwrap();
        let engine = region(&db);
        let op = put(b"1");
        let first = WriteSet {
            entries: vec![b"a"],
            hashes: vec![[1; 32]],
            state: vec![&op],
            size: Some(1),
            state_size: Some(1),
            ..WriteSet::default()
        };
        engine.write(&first).unwrap();
        // Another writer moved the log while this one's connection was away (and with it the
        // lock): this writer's next batch must leave no trace.
        sql(
            &db,
            "UPDATE tb_logs SET size = 2, state_size = 2 WHERE name = 'region'",
        );
        let op = put(b"2");
        let second = WriteSet {
            entries_from: 1,
            entries: vec![b"b"],
            hashes_from: 1,
            hashes: vec![[2; 32], [3; 32]],
            state: vec![&op],
            size: Some(2),
            state_size: Some(2),
            ..WriteSet::default()
        };
        let refused = engine.write(&second).unwrap_err();
        assert!(matches!(refused, LogError::Superseded(_)), "{refused}");
        let entries = sql(&db, "SELECT count(*) FROM tb_entries");
        assert_eq!(entries[0].get::<_, i64>(0), 1);
        let hashes = sql(&db, "SELECT count(*) FROM tb_hashes");
        assert_eq!(hashes[0].get::<_, i64>(0), 1);
        let state = sql(&db, "SELECT value FROM tb_state");
        assert_eq!(state[0].get::<_, Vec<u8>>(0), b"1".to_vec());
    }
}
