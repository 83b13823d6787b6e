//! `tongban-verify fetch <node URL> <dir>`: what an agency downloads from any member's node to
//! verify every region's certificates offline: the federation-wide trust bundle and each member
//! region's status list (specs/status.md §5), each checked before it is written. A list is the
//! whole region's status, so fetching it tells no one which certificate will be checked.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tongban_core::envelope::Kind;
use tongban_core::status::ListStatus;
use tongban_core::trust::{StatusList, TrustStore};

use crate::audit::http::Client;
use crate::audit::node::base;
use crate::cli::{emit, now_or, pinned_kid};

/// Largest trust bundle accepted (the response limit of specs/federation.md §5.3); a status list
/// may be as large as its format allows (status.md §5.3).
const LIMIT: u64 = 8 << 20;

#[derive(clap::Args)]
pub struct FetchArgs {
    /// The node's URL (http:// or https://): any member of the federation.
    node: String,
    /// A new (or empty) directory: bundle.tbt and status-<region>.tsl are written there.
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
    list: Box<dyn Fn(&str) -> String>,
}

fn routes(client: &Client, base: &str) -> Result<(Routes, Vec<u8>)> {
    let federation = format!("{base}/v1/federation/trust-bundle");
    if let Some(bundle) = client.get_unless_missing(&federation, LIMIT)? {
        let base = base.to_owned();
        return Ok((
            Routes {
                bundle: federation,
                list: Box::new(move |rc| format!("{base}/v1/federation/status-lists/{rc}")),
            },
            bundle,
        ));
    }
    // A node in no federation: its own region's bundle and status list.
    let own = format!("{base}/v1/trust-bundle");
    let bundle = client.get(&own, LIMIT)?;
    let list = format!("{base}/v1/status-list");
    Ok((
        Routes {
            bundle: own,
            list: Box::new(move |_| list.clone()),
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
        let url = (routes.list)(rc);
        let fetched = client
            .get(&url, Kind::StatusList.size_limit())
            .map_err(anyhow::Error::from)
            .and_then(|bytes| {
                let list = StatusList::load(&bytes, &trust)
                    .map_err(|f| anyhow!("{url}: the status list does not load: {f}"))?;
                if list.region != root.region {
                    return Err(anyhow!("{url}: a status list of region {}", list.region));
                }
                Ok((bytes, list))
            });
        match fetched {
            Ok((bytes, list)) => {
                let path = args.dir.join(format!("status-{rc}.tsl"));
                write(&path, &bytes)?;
                let counts = list.counts();
                let not_valid: u64 = counts.iter().sum::<u64>()
                    - counts[usize::from(ListStatus::Valid.value())]
                    - counts[usize::from(ListStatus::PromiseOpen.value())];
                report.push_str(&format!(
                    "{rc} {}: status list version {} of {} ({} bytes, {} entries, {} not valid, \
                     usable until {}) → {}\n",
                    root.name.as_str(),
                    list.version,
                    list.issued.to_rfc3339(),
                    bytes.len(),
                    list.len(),
                    not_valid,
                    list.expires.to_rfc3339(),
                    path.display()
                ));
            }
            Err(e) => {
                report.push_str(&format!(
                    "{rc} {}: NO STATUS LIST: {e:#}\n",
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
            "no status list of {}: certificates of those regions verify without their status",
            missing.join(", ")
        ))
    }
}
