//! Batches over threads, with bounded memory and results in input order.
//!
//! The calling thread does as little per certificate as it can, because it is the one stage that
//! does not grow with the workers: it reads records straight into a batch's buffer (a [`Source`]),
//! hands full batches to the workers, and passes what they made of each batch on in input order.
//! The workers verify a batch and also *render* it ([`run_rendered`]'s `render`: the command's
//! result lines and counts, say), so formatting scales with them. At most [`Config::in_flight`]
//! batches exist at once (read, queued, being verified or waiting to be written), each of at most
//! [`Config::batch_size`] records and about [`Config::batch_bytes`] bytes, so memory stays bounded
//! whatever the input's length, and a slow sink (a pipe to a slow consumer) slows the reading down
//! instead of filling memory.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bulk::Outcome;
use crate::bulk::batch::{FastVerifier, Scratch, SignatureStats};
use crate::bulk::cache::DigestCache;
use crate::envelope::Kind;

/// How a run is spread over threads.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Worker threads verifying batches (the calling thread reads and writes).
    pub threads: usize,
    /// Certificates per batch.
    pub batch_size: usize,
    /// A batch is closed once its certificates reach this many bytes.
    pub batch_bytes: usize,
    /// Batches in existence at once.
    pub in_flight: usize,
}

impl Config {
    /// `threads` workers with the defaults: batches of 256 (where the batch equation gains most of
    /// its speed), at most 1 MiB per batch, and two batches per worker plus one being read.
    pub fn new(threads: usize) -> Config {
        let threads = threads.max(1);
        Config {
            threads,
            batch_size: 256,
            batch_bytes: 1 << 20,
            in_flight: 2 * threads + 1,
        }
    }

    /// The most certificate bytes held at once: what bounds the run's memory.
    pub fn max_bytes(&self) -> usize {
        self.in_flight * (self.batch_bytes + Kind::Certificate.size_limit() as usize)
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub certificates: u64,
    pub elapsed: Duration,
    pub signatures: SignatureStats,
}

/// Records being gathered into one batch: their bytes back to back in one buffer, which is reused
/// from batch to batch, and a tag for each (where the record came from).
pub struct Batch<T> {
    tags: Vec<T>,
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl<T> Batch<T> {
    fn new(capacity: usize, mut data: Vec<u8>) -> Batch<T> {
        data.clear();
        Batch {
            tags: Vec::with_capacity(capacity),
            data,
            ends: Vec::with_capacity(capacity),
        }
    }

    /// Appends a record whose bytes are at hand.
    pub fn push(&mut self, tag: T, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        self.ends.push(self.data.len());
        self.tags.push(tag);
    }

    /// Appends a record that `fill` writes straight into the batch's buffer, so that a reader
    /// copies each record once, from its own buffer to here. `fill` appends the record's bytes and
    /// returns its tag, or `None` when there is no record; whatever it appended is removed again
    /// when it fails or finds none. Returns whether a record was added.
    pub fn push_from<E>(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<Option<T>, E>,
    ) -> Result<bool, E> {
        let start = self.data.len();
        match fill(&mut self.data) {
            Ok(Some(tag)) => {
                self.ends.push(self.data.len());
                self.tags.push(tag);
                Ok(true)
            }
            Ok(None) => {
                self.data.truncate(start);
                Ok(false)
            }
            Err(error) => {
                self.data.truncate(start);
                Err(error)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    fn is_full(&self, config: &Config) -> bool {
        self.tags.len() >= config.batch_size || self.data.len() >= config.batch_bytes
    }
}

/// Where a run's records come from.
pub trait Source {
    /// What the sink is told of each record besides its outcome.
    type Tag: Send;
    type Error;
    /// Appends the next record to `batch`; `Ok(false)` at the end of the input. After an error
    /// the run stops reading.
    fn read_into(&mut self, batch: &mut Batch<Self::Tag>) -> Result<bool, Self::Error>;
}

/// Records from an iterator of `(tag, bytes)`, the bytes owned or borrowed: they are copied into
/// the batch either way, so records already in memory are passed without a copy of their own.
pub struct Records<I>(pub I);

impl<T, E, B, I> Source for Records<I>
where
    T: Send,
    B: AsRef<[u8]>,
    I: Iterator<Item = Result<(T, B), E>>,
{
    type Tag = T;
    type Error = E;

    fn read_into(&mut self, batch: &mut Batch<T>) -> Result<bool, E> {
        match self.0.next() {
            None => Ok(false),
            Some(Err(error)) => Err(error),
            Some(Ok((tag, bytes))) => {
                batch.push(tag, bytes.as_ref());
                Ok(true)
            }
        }
    }
}

/// What a worker does with one batch: one outcome per certificate, in order, appended to the
/// vector (the fast verifier's [`verify_batch`](FastVerifier::verify_batch), or anything else
/// that answers that way, such as the bench's stand-in that measures the pipeline alone).
pub trait Work: Sync {
    fn verify(&self, certificates: &[&[u8]], scratch: &mut Scratch, out: &mut Vec<Outcome>);
}

/// The fast verifier, with or without the verified-digest cache.
pub struct Verify<'a> {
    pub verifier: &'a FastVerifier,
    pub cache: Option<&'a DigestCache>,
}

impl Work for Verify<'_> {
    fn verify(&self, certificates: &[&[u8]], scratch: &mut Scratch, out: &mut Vec<Outcome>) {
        self.verifier
            .verify_batch(certificates, self.cache, scratch, out);
    }
}

/// Verifies every record of `input` and gives each outcome, in input order, to `sink` with the
/// record's tag. Stops at the first error of the input or the sink, after giving the sink the
/// outcomes of every record read before it (the sink's own error ends the run at once).
///
/// The sink runs on the calling thread for every certificate; where that matters (a run at the
/// rate of many cores), [`run_rendered`] does the per-certificate work on the workers.
pub fn run<T, E, B, I, F>(
    verifier: &FastVerifier,
    cache: Option<&DigestCache>,
    config: &Config,
    input: I,
    mut sink: F,
) -> Result<Summary, E>
where
    T: Send,
    B: AsRef<[u8]>,
    I: IntoIterator<Item = Result<(T, B), E>>,
    F: FnMut(T, Outcome) -> Result<(), E>,
{
    run_rendered(
        &Verify { verifier, cache },
        config,
        Records(input.into_iter()),
        |tags: Vec<T>, outcomes: Vec<Outcome>| tags.into_iter().zip(outcomes).collect::<Vec<_>>(),
        |pairs: Vec<(T, Outcome)>| pairs.into_iter().try_for_each(|(t, o)| sink(t, o)),
    )
}

/// Verifies every record `source` gives with `work`; a worker turns each batch's tags and
/// outcomes into one `O` with `render`, and `sink` receives those in input order on the calling
/// thread. Stops as [`run`] does. Should `work` or `render` panic (a bug), the calling thread
/// panics with the same payload once the other workers have stopped, rather than waiting for ever
/// for the batch that will not come.
pub fn run_rendered<S, W, O, R, F>(
    work: &W,
    config: &Config,
    mut source: S,
    render: R,
    mut sink: F,
) -> Result<Summary, S::Error>
where
    S: Source,
    W: Work,
    O: Send,
    R: Fn(Vec<S::Tag>, Vec<Outcome>) -> O + Sync,
    F: FnMut(O) -> Result<(), S::Error>,
{
    let started = Instant::now();
    let config = Config {
        threads: config.threads.max(1),
        batch_size: config.batch_size.max(1),
        batch_bytes: config.batch_bytes.max(1),
        in_flight: config.in_flight.max(config.threads.max(1) + 1),
    };
    let (job_tx, job_rx) = mpsc::sync_channel::<Job<S::Tag>>(config.in_flight);
    let (done_tx, done_rx) = mpsc::channel::<Finished<O>>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|scope| {
        // As many workers as the system lets start (a process or memory limit may stop short of
        // `threads`); the work is shared among those. One is needed: if even the first cannot
        // start, the scope's own spawn reports it.
        let job_rx = &job_rx;
        let render = &render;
        for n in 0..config.threads {
            let tx = done_tx.clone();
            let spawned = std::thread::Builder::new()
                .spawn_scoped(scope, move || worker(work, render, job_rx, &tx));
            if spawned.is_err() {
                if n == 0 {
                    let tx = done_tx.clone();
                    scope.spawn(move || worker(work, render, job_rx, &tx));
                }
                break;
            }
        }
        drop(done_tx);
        let mut writer = Writer {
            next: 0,
            waiting: BTreeMap::new(),
            summary: Summary::default(),
            spare: Vec::new(),
        };
        let outcome = feed(
            &config,
            &mut source,
            &job_tx,
            &done_rx,
            &mut writer,
            &mut sink,
        );
        // No more jobs: workers finish what is queued and stop.
        drop(job_tx);
        match outcome {
            Ok(()) => {
                while let Ok(done) = done_rx.recv() {
                    writer.accept(done, &mut sink)?;
                }
                writer.summary.elapsed = started.elapsed();
                Ok(writer.summary)
            }
            Err(Stop::Input(error)) => {
                // Write what was read before the bad record, then report it.
                while let Ok(done) = done_rx.recv() {
                    writer.accept(done, &mut sink)?;
                }
                Err(error)
            }
            Err(Stop::Sink(error)) => Err(error),
        }
    })
}

struct Job<T> {
    seq: u64,
    batch: Batch<T>,
}

struct Done<O> {
    seq: u64,
    certificates: u64,
    rendered: O,
    stats: SignatureStats,
    /// The batch's byte buffer, emptied, for the next batch: reusing it saves allocating (and the
    /// kernel zeroing) a megabyte per batch.
    data: Vec<u8>,
}

/// What a worker sends back for a batch.
enum Finished<O> {
    Done(Done<O>),
    /// Verifying or rendering the batch panicked (a bug): the run cannot write that batch, nor
    /// any after it, so the calling thread panics with the same payload instead of waiting for
    /// the batch for ever.
    Panicked(Box<dyn Any + Send>),
}

enum Stop<E> {
    Input(E),
    Sink(E),
}

fn feed<S, O, F>(
    config: &Config,
    source: &mut S,
    job_tx: &mpsc::SyncSender<Job<S::Tag>>,
    done_rx: &mpsc::Receiver<Finished<O>>,
    writer: &mut Writer<O>,
    sink: &mut F,
) -> Result<(), Stop<S::Error>>
where
    S: Source,
    F: FnMut(O) -> Result<(), S::Error>,
{
    let mut seq = 0u64;
    let mut batch = writer.batch(config);
    // Batches handed out and not yet written (a finished batch waiting for an earlier one still
    // counts: its outcomes are held).
    let mut out = 0usize;
    loop {
        match source.read_into(&mut batch) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                // Verify what was read before the bad record; the run then reports the error.
                if !batch.is_empty() {
                    let _ = job_tx.send(Job { seq, batch });
                }
                return Err(Stop::Input(error));
            }
        }
        if batch.is_full(config) {
            // Keep at most `in_flight` batches alive: this one plus those handed out.
            while out + 1 >= config.in_flight {
                let Ok(done) = done_rx.recv() else {
                    return Ok(());
                };
                out -= writer.accept(done, sink).map_err(Stop::Sink)?;
            }
            let full = std::mem::replace(&mut batch, writer.batch(config));
            if job_tx.send(Job { seq, batch: full }).is_err() {
                return Ok(());
            }
            seq += 1;
            out += 1;
            while let Ok(done) = done_rx.try_recv() {
                out -= writer.accept(done, sink).map_err(Stop::Sink)?;
            }
        }
    }
    if !batch.is_empty() && job_tx.send(Job { seq, batch }).is_err() {
        return Ok(());
    }
    Ok(())
}

fn worker<T, W, O, R>(
    work: &W,
    render: &R,
    jobs: &Mutex<mpsc::Receiver<Job<T>>>,
    done: &mpsc::Sender<Finished<O>>,
) where
    W: Work,
    R: Fn(Vec<T>, Vec<Outcome>) -> O,
{
    let mut scratch = Scratch::default();
    loop {
        // The lock is held only to take one job, never while verifying, so a worker's panic
        // cannot poison it; should it be poisoned all the same, this worker stops.
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        // After a panic this worker stops, so the scratch it may have left half-written is never
        // used again.
        let finished = match catch_unwind(AssertUnwindSafe(|| {
            verify_job(work, render, job, &mut scratch)
        })) {
            Ok(done) => Finished::Done(done),
            Err(panic) => Finished::Panicked(panic),
        };
        let stop = matches!(finished, Finished::Panicked(_));
        if done.send(finished).is_err() || stop {
            return;
        }
    }
}

/// Verifies and renders one batch.
fn verify_job<T, W, O, R>(work: &W, render: &R, job: Job<T>, scratch: &mut Scratch) -> Done<O>
where
    W: Work,
    R: Fn(Vec<T>, Vec<Outcome>) -> O,
{
    let Job { seq, batch } = job;
    let Batch {
        tags,
        mut data,
        ends,
    } = batch;
    let mut certificates: Vec<&[u8]> = Vec::with_capacity(ends.len());
    let mut start = 0;
    for &end in &ends {
        certificates.push(data.get(start..end).unwrap_or_default());
        start = end;
    }
    scratch.stats = SignatureStats::default();
    let mut outcomes = Vec::with_capacity(tags.len());
    work.verify(&certificates, scratch, &mut outcomes);
    drop(certificates);
    data.clear();
    Done {
        seq,
        certificates: outcomes.len() as u64,
        rendered: render(tags, outcomes),
        stats: scratch.stats,
        data,
    }
}

/// Puts finished batches back in input order.
struct Writer<O> {
    next: u64,
    waiting: BTreeMap<u64, Done<O>>,
    summary: Summary,
    /// Byte buffers of written batches, for new ones (at most `in_flight`).
    spare: Vec<Vec<u8>>,
}

impl<O> Writer<O> {
    /// Takes a finished batch and writes every batch now in order; returns how many it wrote.
    /// A batch whose worker panicked panics here, on the calling thread, with the same payload.
    fn accept<E>(
        &mut self,
        finished: Finished<O>,
        sink: &mut impl FnMut(O) -> Result<(), E>,
    ) -> Result<usize, E> {
        let done = match finished {
            Finished::Done(done) => done,
            Finished::Panicked(panic) => resume_unwind(panic),
        };
        self.waiting.insert(done.seq, done);
        let mut written = 0;
        while let Some(done) = self.waiting.remove(&self.next) {
            self.next += 1;
            written += 1;
            self.spare.push(done.data);
            self.summary.signatures.add(&done.stats);
            self.summary.certificates += done.certificates;
            sink(done.rendered)?;
        }
        Ok(written)
    }

    /// An empty batch, in a spare buffer where there is one.
    fn batch<T>(&mut self, config: &Config) -> Batch<T> {
        Batch::new(config.batch_size, self.spare.pop().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Verdict;
    use crate::codes::Code;

    /// Answers "valid" at once, and panics at a certificate that reads `boom`, as a bug would.
    struct PanicsAtBoom;

    impl Work for PanicsAtBoom {
        fn verify(&self, certificates: &[&[u8]], _: &mut Scratch, out: &mut Vec<Outcome>) {
            for certificate in certificates {
                assert_ne!(*certificate, b"boom", "a worker's bug");
                out.push(Outcome {
                    verdict: Verdict::Valid,
                    code: Code::Ok,
                    id: None,
                });
            }
        }
    }

    /// Runs `count` records, the one at `boom` reading `boom`, on a thread of its own; what the
    /// run came to (its panic message, or how many it wrote), or `None` if it has not finished
    /// in a minute.
    fn run_with_boom(count: usize, boom: usize, threads: usize) -> Option<Result<usize, String>> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let input = (0..count).map(|i| {
                let bytes: &[u8] = if i == boom { b"boom" } else { b"fine" };
                Ok::<_, ()>((i, bytes))
            });
            let config = Config {
                batch_size: 1,
                ..Config::new(threads)
            };
            let written = std::sync::atomic::AtomicUsize::new(0);
            let result = catch_unwind(AssertUnwindSafe(|| {
                run_rendered(
                    &PanicsAtBoom,
                    &config,
                    Records(input),
                    |tags: Vec<usize>, _| tags.len(),
                    |n| {
                        written.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                        Ok(())
                    },
                )
            }));
            let came_to = match result {
                Ok(_) => Ok(written.into_inner()),
                Err(panic) => Err(panic
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "a panic without a message".into())),
            };
            let _ = tx.send(came_to);
        });
        rx.recv_timeout(Duration::from_secs(60)).ok()
    }

    #[test]
    fn a_worker_that_panics_stops_the_run_with_its_panic_instead_of_hanging_it() {
        // Far more batches than may be in flight, so the run must wait for the lost batch (it
        // hung before), and fewer, so it reaches the end of its input first.
        for (count, threads) in [(10_000, 2), (10_000, 7), (3, 4)] {
            let came_to = run_with_boom(count, 1, threads);
            match came_to {
                Some(Err(message)) => assert!(message.contains("a worker's bug"), "{message}"),
                other => panic!("{count} records on {threads} threads: {other:?}"),
            }
        }
        // Without the bug, every record is written.
        assert_eq!(run_with_boom(1_000, usize::MAX, 3), Some(Ok(1_000)));
    }
}
