//! Reads of state rows by key ([`super::super::Engine::rows_at`]), sent to the database
//! together.
//!
//! Every act reads its rows before the sequencer's lock and every verification reads its
//! certificate's, each a handful of keys: one statement each costs the server a round trip's
//! work (protocol, snapshot, executor start) many times the rows' own. So the reads waiting at a
//! moment go as one statement: while [`IN_FLIGHT`] statements are out, new reads queue, and the
//! next statement takes all of them (up to [`MAX_KEYS`] keys). Alone, a read waits for nothing;
//! under load, statements grow instead of multiplying. One statement is one snapshot, so each
//! read still gets the state's size and its rows as of one commit, taken after it was asked for.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{Param, query, storage, unsigned};
use crate::log::LogError;
use crate::log::engine::RowsAt;

/// Statements in flight at once: enough to use the server's cores, few enough that reads
/// arriving meanwhile queue up for the next.
const IN_FLIGHT: usize = 4;
/// Keys one statement asks for at most (a read asking for more goes alone).
const MAX_KEYS: usize = 4096;
/// Reads queued at most; beyond, callers wait to queue.
const QUEUE: usize = 4096;

const READ_ROWS: &str = "SELECT l.state_size, r.i, r.value
     FROM tb_logs l
     LEFT JOIN LATERAL (
         SELECT k.i, s.value
         FROM unnest($2::int2[], $3::bytea[]) WITH ORDINALITY AS k(kind, key, i)
         LEFT JOIN tb_state s ON s.log = l.id AND s.kind = k.kind AND s.key = k.key
     ) r ON true
     WHERE l.id = $1";

/// One caller's keys and where its answer goes.
struct Read {
    keys: Vec<(u8, Vec<u8>)>,
    answer: oneshot::Sender<Result<RowsAt, LogError>>,
}

/// The queue of a log's row reads; the task serving it ends when this is dropped.
pub(super) struct RowReads {
    queue: mpsc::Sender<Read>,
}

impl RowReads {
    /// Starts serving the row reads of log `log` on `runtime`, from `pool`'s connections.
    pub(super) fn start(runtime: &tokio::runtime::Handle, pool: Pool, log: i32) -> RowReads {
        let (queue, waiting) = mpsc::channel(QUEUE);
        runtime.spawn(serve(pool, log, waiting));
        RowReads { queue }
    }

    /// Reads the rows at `keys`: the state's size and each row (`None` where absent), as of
    /// one commit. To be run on the engine's runtime.
    pub(super) fn read(
        &self,
        keys: Vec<(u8, Vec<u8>)>,
    ) -> impl Future<Output = Result<RowsAt, LogError>> + Send + 'static {
        let queue = self.queue.clone();
        async move {
            let (answer, answered) = oneshot::channel();
            let stopped = || LogError::Storage("the row reader stopped".into());
            queue
                .send(Read { keys, answer })
                .await
                .map_err(|_| stopped())?;
            answered.await.map_err(|_| stopped())?
        }
    }
}

/// Takes the reads waiting whenever a statement may go, and sends them as one.
async fn serve(pool: Pool, log: i32, mut waiting: mpsc::Receiver<Read>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        // A slot first: while every slot is busy, reads gather in the queue for the next.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = waiting.recv().await else {
            return;
        };
        let mut keys = first.keys.len();
        let mut reads = vec![first];
        while keys < MAX_KEYS {
            let Ok(read) = waiting.try_recv() else {
                break;
            };
            keys += read.keys.len();
            reads.push(read);
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            answer(&pool, log, reads).await;
            drop(slot);
        });
    }
}

/// Reads every key of `reads` in one statement and answers each.
async fn answer(pool: &Pool, log: i32, reads: Vec<Read>) {
    let keys = reads.iter().flat_map(|r| r.keys.iter());
    let kinds: Vec<i16> = keys.clone().map(|(kind, _)| i16::from(*kind)).collect();
    let names: Vec<Vec<u8>> = keys.map(|(_, key)| key.clone()).collect();
    let total = kinds.len();
    match read_rows(pool, log, kinds, names).await {
        Ok((size, mut rows)) => {
            // Each read's rows are the next ones of the statement's, in the order asked.
            let mut rest = rows.drain(..);
            for read in reads {
                let mine = rest.by_ref().take(read.keys.len()).collect();
                // A caller that stopped waiting needs no answer.
                let _ = read.answer.send(Ok((size, mine)));
            }
        }
        Err(e) => {
            let text = e.to_string();
            tracing::debug!(reads = reads.len(), keys = total, error = %text, "row read failed");
            for read in reads {
                let _ = read
                    .answer
                    .send(Err(LogError::Storage(text.clone().into())));
            }
        }
    }
}

/// The state's size and the rows at (`kinds`, `names`), in that order, from one statement.
async fn read_rows(
    pool: &Pool,
    log: i32,
    kinds: Vec<i16>,
    names: Vec<Vec<u8>>,
) -> Result<RowsAt, LogError> {
    let count = kinds.len();
    let conn = pool.get().await.map_err(storage)?;
    let params: Vec<Param> = vec![Box::new(log), Box::new(kinds), Box::new(names)];
    // One row with no key when none was asked for.
    let found = query(&conn, READ_ROWS, &params).await?;
    let size = found
        .first()
        .map(|row| unsigned(row.get(0)))
        .transpose()?
        .ok_or_else(|| LogError::Corrupt(format!("log {log} has no sizes")))?;
    let mut rows = vec![None; count];
    for row in &found {
        let Some(i) = row.get::<_, Option<i64>>(1) else {
            continue;
        };
        let slot = usize::try_from(i - 1)
            .ok()
            .and_then(|i| rows.get_mut(i))
            .ok_or_else(|| LogError::Corrupt(format!("row {i} of {count} asked for")))?;
        *slot = row.get(2);
    }
    Ok((size, rows))
}
