//! The `tongban-node` command line: `init` creates a node directory, `run` serves it,
//! `federation …` signs memberships. A library module so that `tongban-testnet` can run the very
//! same node by re-executing itself (one binary to build); this is the binary edge, hence anyhow.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::api::{self, App};
use crate::config::HttpConfig;
use crate::federation::Federation;
use crate::home::{Home, InitOptions, init};
use crate::log::LogError;
use crate::metrics::Metrics;
use crate::receipts::Receipts;
use crate::region::{OpenError, Region, now};
use crate::storage::{LogName, Storage};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tongban_core::suite::Suite;

#[derive(Parser)]
#[command(name = "tongban-node", version, about = "A Tongban region node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node directory: keys (0600), region root certificate, config, operator token.
    Init {
        /// GB/T 2260 division code of the region, e.g. 341200.
        #[arg(long)]
        region: String,
        /// The region's name, e.g. 阜阳市.
        #[arg(long)]
        name: String,
        #[arg(long)]
        dir: PathBuf,
        /// The federation's name (the first part of log origins).
        #[arg(long, default_value = "tongban.local")]
        federation: String,
        /// Key file of the federation root, to certify this region's root. Without it the node
        /// makes a federation of its own, with the federation root key in <dir>/keys.
        #[arg(long)]
        federation_key: Option<PathBuf>,
        /// Address the HTTP API listens on.
        #[arg(long, default_value = "127.0.0.1:8341")]
        listen: SocketAddr,
        /// The federation's signature suite: ed25519 (Ed25519, BLAKE3, SHA-256 tree) or sm2
        /// (SM2 with SM3, SM3 for every hash: national cryptography).
        #[arg(long, default_value = "ed25519")]
        suite: Suite,
    },
    /// Serve the node in <dir>.
    Run {
        #[arg(long)]
        dir: PathBuf,
        /// Overrides the configured listen address (port 0 picks a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// More federation peers to dial at start (multiaddrs with /p2p/<PeerId>).
        #[arg(long)]
        bootstrap: Vec<String>,
    },
    /// Replays the log of the (stopped) node in <dir>, with every rule and signature, into a
    /// scratch state and compares it with the stored state, row by row; then checks each replica
    /// (its state in step with its tree, its tree giving the root of the checkpoint it verified,
    /// and, with --origin, its state equal to the origin's): exit 0 when all agree, 1 when
    /// anything does not or the log holds an entry its rules refuse.
    Check {
        #[arg(long)]
        dir: PathBuf,
        /// The directory of another region's own node (stopped, at the size of this node's
        /// replica of it): the replica's state must equal its state, row for row. Repeatable.
        #[arg(long)]
        origin: Vec<PathBuf>,
    },
    /// Issues <count> business licences in the (stopped) node in <dir>, through the same code
    /// as an agency's issuance, a chunk per transaction: a region of a real size for scale runs.
    Fill {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        count: u64,
        /// Threads that build and seal certificates (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Percent of the certificates whose status the fill then changes (revoked, cancelled,
        /// suspended, expired in turn), each a logged status act: a region's status list as it
        /// looks after years of service.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
        not_valid: u8,
    },
    /// The federation's membership (specs/federation.md §7).
    #[command(subcommand)]
    Federation(FederationCommand),
}

#[derive(Subcommand)]
enum FederationCommand {
    /// Prints this node's member description (JSON) for the federation's operator.
    Member {
        #[arg(long)]
        dir: PathBuf,
        /// A libp2p multiaddr where the node listens, e.g. /ip4/192.0.2.7/tcp/4341.
        #[arg(long)]
        address: Vec<String>,
    },
    /// Signs version 1 of a membership with the federation root key.
    Genesis {
        /// The federation root key file.
        #[arg(long)]
        key: PathBuf,
        /// The federation's name (the first part of every log origin).
        #[arg(long)]
        name: String,
        /// Cosignatures of other members a checkpoint needs before it is published.
        #[arg(long, default_value_t = 0)]
        quorum: u64,
        /// Member description files.
        #[arg(long, required = true)]
        member: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Signs the next version with members added (or replaced) and removed.
    Update {
        #[arg(long)]
        key: PathBuf,
        /// The version held now.
        #[arg(long)]
        current: PathBuf,
        #[arg(long)]
        add: Vec<PathBuf>,
        /// Region codes to remove.
        #[arg(long)]
        remove: Vec<String>,
        #[arg(long)]
        quorum: Option<u64>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `tongban-node` with `args` (the first is the program name), as its `main` does.
pub fn main<I, T>(args: I) -> std::process::ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init()
        // Already set (a host program installed one): logs go there.
        .ok();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tongban-node: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init {
            region,
            name,
            dir,
            federation,
            federation_key,
            listen,
            suite,
        } => {
            let home = Home::new(&dir);
            let made = init(
                &home,
                &InitOptions {
                    region: &region,
                    name: &name,
                    federation_name: &federation,
                    federation_key: federation_key.as_deref(),
                    suite,
                    http: HttpConfig {
                        listen,
                        ..HttpConfig::default()
                    },
                    now: now().map_err(|r| anyhow::anyhow!(r))?,
                },
            )?;
            println!("initialised region {region} in {}", dir.display());
            println!("region root key id: {}", made.region_root.kid().to_hex());
            println!(
                "operator token (shown once, keep it safe): {}",
                made.operator_token
            );
            Ok(())
        }
        Command::Run {
            dir,
            listen,
            bootstrap,
        } => serve(&Home::new(&dir), listen, &bootstrap),
        Command::Check { dir, origin } => check(&Home::new(&dir), &origin),
        Command::Fill {
            dir,
            count,
            threads,
            not_valid,
        } => fill(&Home::new(&dir), count, threads, not_valid),
        Command::Federation(command) => federation(command),
    }
}

fn fill(home: &Home, count: u64, threads: Option<usize>, not_valid: u8) -> Result<()> {
    let threads = match threads {
        Some(t) if (1..=1024).contains(&t) => t,
        Some(t) => anyhow::bail!("--threads must be between 1 and 1024, not {t}"),
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let region = Region::open(home)?;
    let step = (count / 20).max(1);
    let mut shown = 0;
    let filled = region
        .fill(count, threads, not_valid, |done| {
            if done - shown >= step || done == count {
                shown = done;
                eprintln!("filled {done} of {count}");
            }
        })
        .map_err(|r| anyhow::anyhow!(r))?;
    let seconds = filled.elapsed.as_secs_f64();
    println!(
        "issued {} certificates in {seconds:.1} s ({:.0}/s), changed the status of {}; the log \
         holds {} entries",
        filled.issued,
        filled.issued as f64 / seconds.max(1e-9),
        filled.changed,
        filled.log_size
    );
    Ok(())
}

fn check(home: &Home, origins: &[PathBuf]) -> Result<()> {
    let started = std::time::Instant::now();
    let check = crate::region::check_home(home)?;
    let seconds = started.elapsed().as_secs_f64();
    let differences = &check.differences;
    if differences.count != 0 {
        print_differences(differences);
        anyhow::bail!(
            "the stored state differs from the log's in {} rows ({} entries replayed)",
            differences.count,
            check.entries
        );
    }
    println!(
        "state agrees with the log: {} entries replayed, {} rows compared, {seconds:.1} s",
        check.entries, differences.compared
    );
    check_replicas(home, origins)
}

/// The replicas' part of `check` (specs/federation.md §5).
fn check_replicas(home: &Home, origins: &[PathBuf]) -> Result<()> {
    let checks = crate::federation::check::check_replicas(home, origins)?;
    let mut differing = 0;
    for check in &checks {
        let checkpoint = match check.checkpoint {
            Some(size) => format!("its tree gives the root of its checkpoint at {size}"),
            None => "no checkpoint verified yet".to_owned(),
        };
        let origin = match &check.origin {
            Some(d) if d.count == 0 => {
                format!("; state equal to the origin's ({} rows)", d.compared)
            }
            Some(d) => {
                print_differences(d);
                differing += d.count;
                format!("; state differs from the origin's in {} rows", d.count)
            }
            None => String::new(),
        };
        println!(
            "replica {}: {} entries ({:?}), state in step; {checkpoint}{origin}",
            check.file, check.entries, check.contents
        );
    }
    anyhow::ensure!(
        differing == 0,
        "replica states differ from their origins' in {differing} rows"
    );
    Ok(())
}

fn print_differences(differences: &crate::log::Differences) {
    for (kind, key) in &differences.first {
        println!(
            "differs: kind {kind} key {:?}",
            String::from_utf8_lossy(key)
        );
    }
}

fn federation(command: FederationCommand) -> Result<()> {
    use crate::federation::cli;
    let summary = |m: tongban_core::federation::Membership, out: &std::path::Path| {
        println!(
            "membership {} version {} ({} members, quorum {}) written to {}",
            m.name.as_str(),
            m.version,
            m.members.len(),
            m.quorum,
            out.display()
        );
    };
    match command {
        FederationCommand::Member { dir, address } => {
            let member = cli::member(&Home::new(&dir), address)?;
            println!("{}", serde_json::to_string_pretty(&member)?);
        }
        FederationCommand::Genesis {
            key,
            name,
            quorum,
            member,
            out,
        } => summary(cli::genesis(&key, &name, quorum, &member, &out)?, &out),
        FederationCommand::Update {
            key,
            current,
            add,
            remove,
            quorum,
            out,
        } => summary(
            cli::next(&key, &current, &add, &remove, quorum, &out)?,
            &out,
        ),
    }
    Ok(())
}

fn serve(home: &Home, listen: Option<SocketAddr>, bootstrap: &[String]) -> Result<()> {
    // Before anything opens files: connections must not run the node out of descriptors.
    let fd_limit = crate::serve::raise_fd_limit();
    let config = crate::home::load(home)
        .context("reading the node's directory")?
        .config;
    let metrics = Arc::new(Metrics::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async move {
        // Listened for from here to the end: a signal that arrives while a standby takes over
        // (between serving as a reader and serving as the sequencer) is not lost.
        let stop = Stop::listen();
        let address = listen.unwrap_or(config.http.listen);
        let limits = config.http.limits().within_fd_limit(fd_limit);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let bound = listener.local_addr()?;
        let Some((region, listener)) =
            open_as_sequencer(home, &config, listener, limits, &metrics, &stop).await?
        else {
            return Ok(());
        };
        let region = Arc::new(region);
        announce_where_this_sequencer_answers(&region, bound).await?;
        let region_for_watch = region.clone();
        let receipts = Receipts::start(region.clone()).context("starting the receipt signer")?;
        // Tests and the testnet read this line to find the node.
        announce(&format!(
            "tongban-node {} listening on http://{bound}",
            region.code().as_str()
        ));
        spawn_housekeeping(region.clone(), metrics.clone());
        let federation = match region.config.p2p {
            Some(_) => Some(
                Federation::start(
                    home,
                    region.clone(),
                    receipts.clone(),
                    metrics.clone(),
                    bootstrap,
                )
                .context("joining the federation")?,
            ),
            None => None,
        };
        let mut app = api::router(App {
            region,
            receipts,
            metrics: metrics.clone(),
            federation: federation.clone(),
            in_flight: Arc::default(),
        });
        if let Some(federation) = federation {
            app = app.merge(crate::federation::http::router(federation));
        }
        let superseded = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = {
            let (region, superseded) = (region_for_watch, superseded.clone());
            async move {
                tokio::select! {
                    () = stop.requested() => {}
                    () = until_superseded(region) => superseded.store(true, Ordering::Release),
                }
            }
        };
        crate::serve::serve(listener, app, limits, metrics, stop).await;
        if superseded.load(Ordering::Acquire) {
            anyhow::bail!(
                "another process of this region took its log: this one stopped serving \
                 (start it again to stand by)"
            );
        }
        Ok(())
    });
    // A blocking task may still wait on the database (a standby's wait for the writer lock,
    // retried while the server is unreachable): the process waits for it a moment, not forever.
    runtime.shutdown_timeout(Duration::from_secs(5));
    served
}

/// How often a sequencer confirms it still holds its log.
const WRITER_CHECK: Duration = Duration::from_secs(1);

/// Returns once another process holds or wrote the region's log (after this one's database
/// session was lost): this process may no longer write it, and must stop answering as the
/// sequencer, so that load balancers and clients go to the one that is. It exits rather than
/// turn standby in place: everything it started (the federation, housekeeping, receipts) holds
/// the region, and a supervisor's restart brings it back as a standby, cleanly.
async fn until_superseded(region: Arc<Region>) {
    loop {
        tokio::time::sleep(WRITER_CHECK).await;
        let log = region.log().clone();
        match tokio::task::spawn_blocking(move || log.check_writer()).await {
            Ok(Ok(())) => {}
            Ok(Err(LogError::Superseded(why))) => {
                tracing::error!(%why, "this process is no longer the region's sequencer: stopping");
                return;
            }
            // The database unreachable: writes are refused meanwhile, reads answered when
            // they can be; the check goes on.
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot confirm the log's writer lock"),
            Err(e) => tracing::error!(error = %e, "the writer check failed"),
        }
    }
}

/// Prints a line on stdout for whoever started the node. A standby that takes over prints a
/// second one, which a starter that read only the first (and closed the pipe) does not get: not
/// a reason to stop serving.
fn announce(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        tracing::warn!(error = %e, line, "could not print to stdout");
    }
}

/// Opens the region as its log's only writer. While another process of the region writes it (one
/// PostgreSQL database, several processes), serves as a standby on `listener` and takes over
/// when that process stops. Gives the region and the listener to serve it on; `None` if the node
/// was told to shut down meanwhile.
async fn open_as_sequencer(
    home: &Home,
    config: &crate::config::Config,
    mut listener: tokio::net::TcpListener,
    limits: crate::serve::Limits,
    metrics: &Arc<Metrics>,
    stop: &Stop,
) -> Result<Option<(Region, tokio::net::TcpListener)>> {
    let storage = {
        let (home, storage) = (home.clone(), config.storage.clone());
        tokio::task::spawn_blocking(move || Storage::open(&home, &storage))
            .await?
            .context("opening the node's storage")?
    };
    let bound = listener.local_addr()?;
    loop {
        let held = {
            let storage = storage.clone();
            tokio::task::spawn_blocking(move || storage.log_is_held(&LogName::Region)).await??
        };
        if held {
            announce(&format!(
                "tongban-node {} standby, listening on http://{bound}",
                config.region
            ));
            tracing::warn!("another process is this region's sequencer: standing by");
            let freed = serve_as_standby(home, &storage, listener, limits, metrics, stop).await?;
            if !freed {
                return Ok(None);
            }
            listener = tokio::net::TcpListener::bind(bound)
                .await
                .with_context(|| format!("listening on {bound} again"))?;
            tracing::warn!("the sequencer stopped: taking over");
        }
        let (home, storage) = (home.clone(), storage.clone());
        match tokio::task::spawn_blocking(move || Region::open_in(&home, storage)).await? {
            Ok(region) => return Ok(Some((region, listener))),
            // Another process took the log between the look and the open: stand by again.
            Err(OpenError::Log(LogError::Superseded(why))) => {
                tracing::warn!(%why, "the region's log was taken meanwhile");
            }
            Err(e) => return Err(e).context("opening the node"),
        }
    }
}

/// Tells the node's other processes (standbys, on PostgreSQL) where this sequencer answers
/// them: `[http] internal_url`, or the address it listens on (loopback when that is every
/// address).
async fn announce_where_this_sequencer_answers(
    region: &Arc<Region>,
    bound: SocketAddr,
) -> Result<()> {
    let url = match &region.config.http.internal_url {
        Some(url) => url.as_str().to_owned(),
        None => {
            let mut reach = bound;
            if reach.ip().is_unspecified() {
                reach.set_ip(match reach {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{reach}")
        }
    };
    let storage = region.storage().clone();
    tokio::task::spawn_blocking(move || storage.announce_sequencer(&LogName::Region, &url))
        .await?
        .context("recording where this sequencer answers its standbys")
}

/// How often a standby's view follows the log its sequencer writes (seals, credentials): a
/// seal registered or revoked there reaches the standby's verifications within this.
const FOLLOW: Duration = Duration::from_millis(250);

/// Serves reads and verification as a standby, until the region's log is free (true) or the
/// node is told to stop (false). A standby that cannot open its region to read (its log's state
/// behind its entries, which only the sequencer brings up to date) answers every request
/// `NOT_SEQUENCER` instead.
async fn serve_as_standby(
    home: &Home,
    storage: &Storage,
    listener: tokio::net::TcpListener,
    limits: crate::serve::Limits,
    metrics: &Arc<Metrics>,
    stop: &Stop,
) -> Result<bool> {
    let reader = {
        let (home, storage) = (home.clone(), storage.clone());
        tokio::task::spawn_blocking(move || Region::open_reader(&home, storage)).await?
    };
    let (router, follow) = match reader {
        Ok(region) => {
            let region = Arc::new(region);
            let follow = tokio::spawn(follow_the_sequencer(region.clone()));
            let app = api::router(App {
                receipts: Receipts::forwarded(region.clone()),
                region,
                metrics: metrics.clone(),
                federation: None,
                in_flight: Arc::default(),
            });
            (app, Some(follow))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the region to read: refusing every request");
            (
                axum::Router::new().fallback(crate::standby::not_sequencer),
                None,
            )
        }
    };
    let freed = crate::standby::serve_until_free(
        listener,
        storage.clone(),
        router,
        limits,
        metrics.clone(),
        stop.clone().requested(),
    )
    .await;
    if let Some(follow) = follow {
        follow.abort();
        // Its region (and the log it reads) is gone before this process opens it to write.
        let _ = follow.await;
    }
    Ok(freed)
}

/// Keeps a standby's view on what its sequencer made durable.
async fn follow_the_sequencer(region: Arc<Region>) {
    loop {
        tokio::time::sleep(FOLLOW).await;
        let region = region.clone();
        match tokio::task::spawn_blocking(move || region.follow()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "following the sequencer's log"),
            Err(e) => tracing::error!(error = %e, "the follow task failed"),
        }
    }
}

/// Checkpoints on an interval, and the node's own act of lapsing promises past their deadline.
fn spawn_housekeeping(region: Arc<Region>, metrics: Arc<Metrics>) {
    let every = Duration::from_millis(region.config.log.checkpoint_interval_ms.max(10));
    let checkpoints = region.clone();
    tokio::spawn(async move {
        let mut last = std::time::Instant::now();
        loop {
            tokio::time::sleep(every).await;
            let node = checkpoints.clone();
            match tokio::task::spawn_blocking(move || node.checkpoint()).await {
                Ok(Ok(Some(_))) => last = std::time::Instant::now(),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "signing a checkpoint"),
                Err(e) => tracing::error!(error = %e, "the checkpoint task failed"),
            }
            metrics
                .checkpoint_age
                .set(i64::try_from(last.elapsed().as_secs()).unwrap_or(i64::MAX));
        }
    });
    let every = Duration::from_millis(region.config.promises.check_interval_ms.max(10));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let node = region.clone();
            match tokio::task::spawn_blocking(move || node.lapse_promises()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(lapsed = n, "promises lapsed at their deadline"),
                Ok(Err(e)) => tracing::error!(error = %e, "lapsing promises"),
                Err(e) => tracing::error!(error = %e, "the promise task failed"),
            }
        }
    });
}

/// SIGINT or SIGTERM, as seen by every phase of `run` through one listener.
#[derive(Clone)]
struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    fn listen() -> Stop {
        let (tell, told) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown().await;
            // Nobody listens any more only once `run` has ended.
            let _ = tell.send(true);
        });
        Stop(told)
    }

    /// Completes once a stop was asked for (at once if it was already).
    async fn requested(mut self) {
        // An error means the listener is gone, which only a stop does.
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    tracing::info!("shutting down");
}
