//! Batches over threads, with bounded memory and results in input order.
//!
//! The calling thread reads records from the input iterator, packs them into batches and hands
//! the batches to worker threads; it also receives the workers' results and passes them to the
//! sink in input order. At most [`Config::in_flight`] batches exist at once (read, queued, being
//! verified or waiting to be written), each of at most [`Config::batch_size`] records and about
//! [`Config::batch_bytes`] bytes, so memory stays bounded whatever the input's length, and a slow
//! sink (a pipe to a slow consumer) slows the reading down instead of filling memory.

use std::collections::BTreeMap;
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

struct Job<T> {
    seq: u64,
    tags: Vec<T>,
    data: Vec<u8>,
    ends: Vec<usize>,
}

struct Done<T> {
    seq: u64,
    tags: Vec<T>,
    outcomes: Vec<Outcome>,
    stats: SignatureStats,
    /// The batch's byte buffer, emptied, for the next batch: reusing it saves allocating (and the
    /// kernel zeroing) a megabyte per batch.
    data: Vec<u8>,
}

impl<T> Job<T> {
    fn new(seq: u64, config: &Config, spare: &mut Vec<Vec<u8>>) -> Job<T> {
        let mut data = spare.pop().unwrap_or_default();
        data.clear();
        Job {
            seq,
            tags: Vec::with_capacity(config.batch_size),
            data,
            ends: Vec::with_capacity(config.batch_size),
        }
    }

    fn is_full(&self, config: &Config) -> bool {
        self.tags.len() >= config.batch_size || self.data.len() >= config.batch_bytes
    }
}

/// Verifies every record of `input` and gives each outcome, in input order, to `sink` with the
/// record's tag. Stops at the first error of the input or the sink, after giving the sink the
/// outcomes of every record read before it (the sink's own error ends the run at once).
///
/// A record's bytes may be owned or borrowed (`B`): they are copied into the batch either way, so
/// input already in memory is passed without a copy of its own.
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
    let started = Instant::now();
    let config = Config {
        threads: config.threads.max(1),
        batch_size: config.batch_size.max(1),
        batch_bytes: config.batch_bytes.max(1),
        in_flight: config.in_flight.max(config.threads.max(1) + 1),
    };
    let (job_tx, job_rx) = mpsc::sync_channel::<Job<T>>(config.in_flight);
    let (done_tx, done_rx) = mpsc::channel::<Done<T>>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|scope| {
        // As many workers as the system lets start (a process or memory limit may stop short of
        // `threads`); the work is shared among those. One is needed: if even the first cannot
        // start, the scope's own spawn reports it.
        let job_rx = &job_rx;
        for n in 0..config.threads {
            let tx = done_tx.clone();
            let spawned = std::thread::Builder::new()
                .spawn_scoped(scope, move || worker(verifier, cache, job_rx, &tx));
            if spawned.is_err() {
                if n == 0 {
                    let tx = done_tx.clone();
                    scope.spawn(move || worker(verifier, cache, job_rx, &tx));
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
        let outcome = feed(&config, input, &job_tx, &done_rx, &mut writer, &mut sink);
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

enum Stop<E> {
    Input(E),
    Sink(E),
}

fn feed<T, E, B, I, F>(
    config: &Config,
    input: I,
    job_tx: &mpsc::SyncSender<Job<T>>,
    done_rx: &mpsc::Receiver<Done<T>>,
    writer: &mut Writer<T>,
    sink: &mut F,
) -> Result<(), Stop<E>>
where
    B: AsRef<[u8]>,
    I: IntoIterator<Item = Result<(T, B), E>>,
    F: FnMut(T, Outcome) -> Result<(), E>,
{
    let mut seq = 0u64;
    let mut job = Job::new(seq, config, &mut writer.spare);
    // Batches handed out and not yet written (a finished batch waiting for an earlier one still
    // counts: its outcomes are held).
    let mut out = 0usize;
    for record in input {
        let (tag, bytes) = match record {
            Ok(record) => record,
            Err(error) => {
                // Verify what was read before the bad record; the run then reports the error.
                if !job.tags.is_empty() {
                    let _ = job_tx.send(job);
                }
                return Err(Stop::Input(error));
            }
        };
        job.tags.push(tag);
        job.data.extend_from_slice(bytes.as_ref());
        job.ends.push(job.data.len());
        if job.is_full(config) {
            // Keep at most `in_flight` batches alive: this one plus those handed out.
            while out + 1 >= config.in_flight {
                let Ok(done) = done_rx.recv() else {
                    return Ok(());
                };
                out -= writer.accept(done, sink).map_err(Stop::Sink)?;
            }
            seq += 1;
            let full = std::mem::replace(&mut job, Job::new(seq, config, &mut writer.spare));
            if job_tx.send(full).is_err() {
                return Ok(());
            }
            out += 1;
            while let Ok(done) = done_rx.try_recv() {
                out -= writer.accept(done, sink).map_err(Stop::Sink)?;
            }
        }
    }
    if !job.tags.is_empty() && job_tx.send(job).is_err() {
        return Ok(());
    }
    Ok(())
}

fn worker<T>(
    verifier: &FastVerifier,
    cache: Option<&DigestCache>,
    jobs: &Mutex<mpsc::Receiver<Job<T>>>,
    done: &mpsc::Sender<Done<T>>,
) {
    let mut scratch = Scratch::default();
    loop {
        // The lock is held only to take one job; a poisoned lock means another worker panicked,
        // and this one stops too.
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        let mut certificates: Vec<&[u8]> = Vec::with_capacity(job.ends.len());
        let mut start = 0;
        for &end in &job.ends {
            certificates.push(job.data.get(start..end).unwrap_or_default());
            start = end;
        }
        scratch.stats = SignatureStats::default();
        let mut outcomes = Vec::with_capacity(job.tags.len());
        verifier.verify_batch(&certificates, cache, &mut scratch, &mut outcomes);
        drop(certificates);
        let mut data = job.data;
        data.clear();
        let finished = Done {
            seq: job.seq,
            tags: job.tags,
            outcomes,
            stats: scratch.stats,
            data,
        };
        if done.send(finished).is_err() {
            return;
        }
    }
}

/// Puts finished batches back in input order.
struct Writer<T> {
    next: u64,
    waiting: BTreeMap<u64, Done<T>>,
    summary: Summary,
    /// Byte buffers of written batches, for new ones (at most `in_flight`).
    spare: Vec<Vec<u8>>,
}

impl<T> Writer<T> {
    /// Takes a finished batch and writes every batch now in order; returns how many it wrote.
    fn accept<E>(
        &mut self,
        done: Done<T>,
        sink: &mut impl FnMut(T, Outcome) -> Result<(), E>,
    ) -> Result<usize, E> {
        self.waiting.insert(done.seq, done);
        let mut written = 0;
        while let Some(mut done) = self.waiting.remove(&self.next) {
            self.next += 1;
            written += 1;
            self.spare.push(std::mem::take(&mut done.data));
            self.summary.signatures.add(&done.stats);
            for (tag, outcome) in done.tags.into_iter().zip(done.outcomes) {
                self.summary.certificates += 1;
                sink(tag, outcome)?;
            }
        }
        Ok(written)
    }
}
