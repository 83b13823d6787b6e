//! `tongban-verify fetch <node URL> <dir>`: what an agency downloads from any member's node to
//! verify every region's certificates offline: the federation-wide trust bundle and each member
//! region's status snapshot (specs/federation.md §5), each checked before it is written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tongban_core::trust::{StatusSnapshot, TrustStore};

use crate::audit::http::Client;
use crate::audit::node::base;
use crate::cli::{emit, now_or, pinned_kid};

/// Largest trust bundle or snapshot accepted (the response limit of specs/federation.md §5.3).
const LIMIT: u64 = 8 << 20;

#[derive(clap::Args)]
pub struct FetchArgs {
    /// The node's URL (http:// or https://): any member of the federation.
    node: String,
    /// A new (or empty) directory: bundle.tbt and status-<region>.tbs are written there.
    dir: PathBuf,
    /// Seconds each request to the node may take, from connecting to the last byte.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Refuse (exit 2) a bundle not published by the federation root with this key id (32 hex
    /// digits).
    #[arg(long)]
    federation_kid: Option<String>,
}

/// What a node serves, by whether it is a federation member (the federation's routes) or alone.
struct Routes {
    bundle: String,
    snapshot: Box<dyn Fn(&str) -> String>,
}

fn routes(client: &Client, base: &str) -> Result<(Routes, Vec<u8>)> {
    let federation = format!("{base}/v1/federation/trust-bundle");
    if let Some(bundle) = client.get_unless_missing(&federation, LIMIT)? {
        let base = base.to_owned();
        return Ok((
            Routes {
                bundle: federation,
                snapshot: Box::new(move |rc| format!("{base}/v1/federation/status-snapshots/{rc}")),
            },
            bundle,
        ));
    }
    // A node in no federation: its own region's bundle and snapshot.
    let own = format!("{base}/v1/trust-bundle");
    let bundle = client.get(&own, LIMIT)?;
    let snapshot = format!("{base}/v1/status-snapshot");
    Ok((
        Routes {
            bundle: own,
            snapshot: Box::new(move |_| snapshot.clone()),
        },
        bundle,
    ))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(args: &FetchArgs) -> Result<ExitCode> {
    let pinned = pinned_kid(args.federation_kid.as_deref())?;
    if std::fs::read_dir(&args.dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(anyhow!(
            "{} is not empty: fetch into a new directory",
            args.dir.display()
        ));
    }
    let client = Client::new(Duration::from_secs(args.timeout));
    let base = base(&args.node)?;
    let (routes, bundle) = routes(&client, &base)?;
    let trust = TrustStore::load(&bundle, now_or(None)?, pinned)
        .map_err(|f| anyhow!("{}: the trust bundle does not load: {f}", routes.bundle))?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    write(&args.dir.join("bundle.tbt"), &bundle)?;
    let mut report = format!(
        "trust bundle of {} regions and {} seals → {}\n",
        trust.regions().len(),
        trust.seals().count(),
        args.dir.join("bundle.tbt").display()
    );
    let mut missing = Vec::new();
    for root in trust.regions() {
        let rc = root.region.as_str();
        let url = (routes.snapshot)(rc);
        let fetched = client
            .get(&url, LIMIT)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| {
                let snapshot = StatusSnapshot::load(&bytes, &trust)
                    .map_err(|f| anyhow!("{url}: the snapshot does not load: {f}"))?;
                if snapshot.region != root.region {
                    return Err(anyhow!("{url}: a snapshot of region {}", snapshot.region));
                }
                Ok((bytes, snapshot))
            });
        match fetched {
            Ok((bytes, snapshot)) => {
                let path = args.dir.join(format!("status-{rc}.tbs"));
                write(&path, &bytes)?;
                report.push_str(&format!(
                    "{rc} {}: status snapshot version {} of {}, {} certificates not valid → {}\n",
                    root.name.as_str(),
                    snapshot.version,
                    snapshot.issued.to_rfc3339(),
                    snapshot.entries.len(),
                    path.display()
                ));
            }
            Err(e) => {
                report.push_str(&format!(
                    "{rc} {}: NO SNAPSHOT: {e:#}\n",
                    root.name.as_str()
                ));
                missing.push(rc.to_owned());
            }
        }
    }
    emit(&report)?;
    if missing.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(anyhow!(
            "no status snapshot of {}: certificates of those regions verify without their status",
            missing.join(", ")
        ))
    }
}
