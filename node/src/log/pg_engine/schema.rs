//! The PostgreSQL tables that hold every log of a node, their versioned migrations, and the
//! checks made when a log is opened.
//!
//! All logs of one node (its region's log, each replica) share one set of tables in the
//! node's schema, told apart by a small log id: a row of `tb_logs` per log, holding what redb
//! keeps in a file's `meta` table. Keys are compared as PostgreSQL compares `bytea`, byte by
//! byte then by length, which is the order redb gives `&[u8]` keys, so scans return rows in the
//! same order on both engines.

use tokio_postgres::Client;
use tongban_core::log::tree::stored_hash_count;
use tongban_core::suite::Suite;

use super::super::engine::Opened;
use super::super::{Contents, LogError};
use super::{lock_key, storage};

/// Each migration, in order: migration `n` (from 1) brings the schema to version `n`. A
/// migration is never edited once released: a change is a new one, so every database reaches
/// the same tables whatever version it started from.
const MIGRATIONS: &[&str] = &[
    // 1: the logs, their entries, stored hashes, index rows, blobs, state and checkpoints.
    "CREATE TABLE tb_logs (
         id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         name text NOT NULL UNIQUE,
         size bigint NOT NULL CHECK (size >= 0),
         state_size bigint NOT NULL CHECK (state_size >= 0 AND state_size <= size),
         contents smallint NOT NULL,
         suite smallint NOT NULL
     );
     CREATE TABLE tb_entries (
         log integer NOT NULL, idx bigint NOT NULL, bytes bytea NOT NULL,
         PRIMARY KEY (log, idx)
     );
     CREATE TABLE tb_hashes (
         log integer NOT NULL, pos bigint NOT NULL, hash bytea NOT NULL,
         PRIMARY KEY (log, pos)
     );
     CREATE TABLE tb_index_rows (
         log integer NOT NULL, name text NOT NULL, key bytea NOT NULL, idx bigint NOT NULL,
         PRIMARY KEY (log, name, key, idx)
     );
     CREATE TABLE tb_blobs (
         log integer NOT NULL, idx bigint NOT NULL, digest bytea NOT NULL, bytes bytea NOT NULL,
         PRIMARY KEY (log, idx, digest)
     );
     CREATE TABLE tb_state (
         log integer NOT NULL, kind smallint NOT NULL, key bytea NOT NULL, value bytea NOT NULL,
         PRIMARY KEY (log, kind, key)
     );
     CREATE TABLE tb_checkpoints (
         log integer NOT NULL, size bigint NOT NULL, bytes bytea NOT NULL,
         PRIMARY KEY (log, size)
     );",
    // 2: the request rows (idempotency keys and their answers), by age for pruning.
    "CREATE TABLE tb_requests (
         log integer NOT NULL, key bytea NOT NULL, created bigint NOT NULL, record bytea NOT NULL,
         PRIMARY KEY (log, key)
     );
     CREATE INDEX tb_requests_by_time ON tb_requests (log, created);",
    // 3: the federation's own records (federation/store.rs): membership versions, the
    // witness's last cosigned checkpoint per origin with the line given for it, members marked
    // misbehaving, the node's latest cosigned checkpoint, and the digest of each
    // `federation.redb` imported into them.
    "CREATE TABLE tb_fed_memberships (version bigint PRIMARY KEY, signed bytea NOT NULL);
     CREATE TABLE tb_fed_witnessed (
         origin text PRIMARY KEY, size bigint NOT NULL, root bytea NOT NULL, note bytea NOT NULL,
         line text
     );
     CREATE TABLE tb_fed_misbehaving (region text PRIMARY KEY, record bytea NOT NULL);
     CREATE TABLE tb_fed_cosigned (
         own boolean PRIMARY KEY CHECK (own), size bigint NOT NULL, note bytea NOT NULL
     );
     CREATE TABLE tb_fed_imported (
         digest bytea PRIMARY KEY, at timestamptz NOT NULL DEFAULT now()
     );",
    // 4: API credentials (credentials.rs): BLAKE3 hashes of the operator's token (the row whose
    // uscc is null, at most one) and of each agency's.
    "CREATE TABLE tb_credentials (uscc text, name text NOT NULL, token_hash text NOT NULL);
     CREATE UNIQUE INDEX tb_credentials_agency ON tb_credentials (uscc);
     CREATE UNIQUE INDEX tb_credentials_operator ON tb_credentials ((uscc IS NULL))
         WHERE uscc IS NULL;",
    // 5: where each log's sequencer answers its node's other processes (a standby forwards
    // verification receipts there), written by the sequencer when it starts.
    "CREATE TABLE tb_sequencer (
         log text PRIMARY KEY, url text NOT NULL, since timestamptz NOT NULL DEFAULT now()
     );",
    // 6: index rows as runs: one row per index key and written batch, holding the batch's
    // entries under that key in order. Most keys are shared by a whole batch (entry kind,
    // month, certificate type, seal), so a batch writes a handful of rows instead of one per
    // entry and key, the largest share of the database's work per issuance. Names compare
    // bytewise (collation "C"), as redb compares them, and cheaply. Rows already held become
    // runs of at most 1,024 entries.
    "CREATE TABLE tb_index_runs (
         log integer NOT NULL, name text COLLATE \"C\" NOT NULL, key bytea NOT NULL,
         first bigint NOT NULL, idxs bigint[] NOT NULL CHECK (cardinality(idxs) > 0),
         PRIMARY KEY (log, name, key, first)
     );
     INSERT INTO tb_index_runs (log, name, key, first, idxs)
         SELECT log, name, key, min(idx), array_agg(idx ORDER BY idx)
         FROM tb_index_rows GROUP BY log, name, key, idx / 1024;
     DROP TABLE tb_index_rows;",
    // 7: state rows patched where they are: `tb_patch` sets the bytes at `offsets` of `v` to
    // `bytes`, in order, failing (set_byte's range error) where an offset is beyond the row.
    // A batch's patched rows (the status list's slots) are then written in the same flight as
    // the rest of the batch, instead of read back first for a second flight.
    "CREATE FUNCTION tb_patch(v bytea, offsets int4[], bytes int4[]) RETURNS bytea
     LANGUAGE plpgsql IMMUTABLE STRICT AS $$
     BEGIN
         FOR i IN 1 .. coalesce(cardinality(offsets), 0) LOOP
             v := set_byte(v, offsets[i], bytes[i]);
         END LOOP;
         RETURN v;
     END $$;",
];

/// The schema version this build writes and reads.
pub(super) const VERSION: i32 = MIGRATIONS.len() as i32;

/// Creates the schema if needed and applies the migrations it lacks, all in one transaction
/// under a transaction-scoped advisory lock, so processes starting together on one database
/// migrate it once. A database of a newer version than this build is refused: an older binary
/// never writes tables it does not know.
pub(super) async fn migrate(client: &Client, schema: &str) -> Result<i32, LogError> {
    client.batch_execute("BEGIN").await.map_err(storage)?;
    let applied = migrate_in_transaction(client, schema).await;
    let end = if applied.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    client.batch_execute(end).await.map_err(storage)?;
    applied
}

async fn migrate_in_transaction(client: &Client, schema: &str) -> Result<i32, LogError> {
    let key = lock_key(&["migrate", schema]);
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
        .await
        .map_err(storage)?;
    // `schema` was checked to be a plain identifier (config's Schema), so quoting is enough.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS \"{schema}\".tb_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(storage)?;
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM tb_migrations", &[])
        .await
        .map_err(storage)?;
    let version: i32 = row.get(0);
    if version > VERSION {
        return Err(LogError::Corrupt(format!(
            "the database's schema is at version {version}; this build knows versions up to \
             {VERSION}: run the build that migrated it"
        )));
    }
    for (step, sql) in (version + 1..).zip(&MIGRATIONS[version as usize..]) {
        client.batch_execute(sql).await.map_err(storage)?;
        client
            .execute("INSERT INTO tb_migrations (version) VALUES ($1)", &[&step])
            .await
            .map_err(storage)?;
        tracing::info!(schema, version = step, "database schema migrated");
    }
    Ok(VERSION)
}

/// A log's row and what it says, created (keeping `wanted` and `suite`) when the log is new.
pub(super) struct Registered {
    pub id: i32,
    pub opened: Opened,
}

/// Finds or creates the log `name` and checks that its size, entries, stored hashes, state and
/// checkpoint agree, as redb's open does for a file.
pub(super) async fn register(
    client: &Client,
    name: &str,
    wanted: Contents,
    suite: Suite,
) -> Result<Registered, LogError> {
    client
        .execute(
            "INSERT INTO tb_logs (name, size, state_size, contents, suite)
             VALUES ($1, 0, 0, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[&name, &contents_code(wanted), &suite_code(suite)],
        )
        .await
        .map_err(storage)?;
    let row = client
        .query_one(
            "SELECT id, size, state_size, contents, suite FROM tb_logs WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(storage)?;
    let id: i32 = row.get(0);
    let size = unsigned(row.get(1))?;
    let state_size = unsigned(row.get(2))?;
    let contents = match row.get::<_, i16>(3) {
        0 => Contents::Entries,
        1 => Contents::Tree,
        other => {
            return Err(LogError::Corrupt(format!(
                "unknown contents code {other} for log {name}"
            )));
        }
    };
    let stored_suite = match row.get::<_, i16>(4) {
        0 => Suite::Ed25519,
        1 => Suite::Sm2,
        other => {
            return Err(LogError::Corrupt(format!(
                "unknown suite code {other} for log {name}"
            )));
        }
    };
    // Ends, not counts: each is one descent of a primary key, so opening costs the same
    // whatever the log's length (a count would scan it; a region's log holds hundreds of
    // millions). Entries and hashes are written densely from 0, so the end is the count of an
    // intact log; a row missing inside one is what `check` and `audit replay` find.
    let ends = client
        .query_one(
            "SELECT (SELECT coalesce(max(idx) + 1, 0) FROM tb_entries WHERE log = $1),
                    (SELECT coalesce(max(pos) + 1, 0) FROM tb_hashes WHERE log = $1),
                    (SELECT max(size) FROM tb_checkpoints WHERE log = $1)",
            &[&id],
        )
        .await
        .map_err(storage)?;
    let entry_end = unsigned(ends.get(0))?;
    let hash_end = unsigned(ends.get(1))?;
    let checkpoint: Option<i64> = ends.get(2);
    let held = match contents {
        Contents::Entries => size,
        Contents::Tree => 0,
    };
    if entry_end != held {
        return Err(LogError::Corrupt(format!(
            "log {name}: size {size} ({contents:?}) but its entries end at {entry_end}"
        )));
    }
    if hash_end != stored_hash_count(size) {
        return Err(LogError::Corrupt(format!(
            "log {name}: size {size} needs {} stored hashes but they end at {hash_end}",
            stored_hash_count(size)
        )));
    }
    if let Some(stored) = checkpoint
        && unsigned(stored)? > size
    {
        return Err(LogError::Corrupt(format!(
            "log {name}: the last checkpoint is for size {stored} but the log has {size} entries"
        )));
    }
    Ok(Registered {
        id,
        opened: Opened {
            size,
            state_size,
            contents,
            suite: stored_suite,
        },
    })
}

fn suite_code(suite: Suite) -> i16 {
    match suite {
        Suite::Ed25519 => 0,
        Suite::Sm2 => 1,
    }
}

fn contents_code(contents: Contents) -> i16 {
    match contents {
        Contents::Entries => 0,
        Contents::Tree => 1,
    }
}

/// A stored count or index, which the tables' checks keep non-negative.
pub(super) fn unsigned(value: i64) -> Result<u64, LogError> {
    u64::try_from(value).map_err(|_| LogError::Corrupt(format!("negative count {value} stored")))
}

/// An index or size as PostgreSQL's `bigint`.
pub(super) fn signed(value: u64) -> Result<i64, LogError> {
    i64::try_from(value)
        .map_err(|_| LogError::InvalidArgument(format!("{value} is beyond a bigint")))
}
