//! A testnet: region nodes as real processes on loopback, each one `tongban-testnet node run`
//! (this very binary, running `tongban_node::cli`), forming one federation. Its state (node
//! directories, process ids, addresses, tokens) lives in `<dir>/testnet.json`, readable by its
//! owner only since it holds the operators' and agencies' tokens.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use tongban_core::suite::Suite;

use crate::http::Http;
use crate::signals;

/// The regions of the source plans, in the order the story uses them.
pub const DEFAULT_REGIONS: [(&str, &str); 4] = [
    ("341200", "阜阳市"),
    ("370100", "济南市"),
    ("321300", "宿迁市"),
    ("340700", "铜陵市"),
];

/// Further prefecture-level cities (GB/T 2260) for networks of more than four regions.
const MORE_REGIONS: [(&str, &str); 12] = [
    ("320100", "南京市"),
    ("330100", "杭州市"),
    ("420100", "武汉市"),
    ("440300", "深圳市"),
    ("510100", "成都市"),
    ("610100", "西安市"),
    ("350200", "厦门市"),
    ("430100", "长沙市"),
    ("370200", "青岛市"),
    ("410100", "郑州市"),
    ("210100", "沈阳市"),
    ("530100", "昆明市"),
];

pub const MAX_REGIONS: usize = DEFAULT_REGIONS.len() + MORE_REGIONS.len();

/// 营业执照 (its issuing authority's USCC, then the type number).
pub const BUSINESS_LICENCE: &str = "11100000000013338W001";
/// 食品经营许可证, the promise-based permit of the story.
pub const PERMIT: &str = "11100000000013338W002";

pub const STATE_FILE: &str = "testnet.json";
const FEDERATION: &str = "tongban.local";

/// How long a node may take to start listening (a debug build on a busy machine is slow).
const START_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgencyRecord {
    /// `issuer` (市场监督管理局, issues certificates) or `approval` (行政审批服务局, asks other
    /// regions for proofs and copies: its seal has a sharing scope).
    pub role: String,
    pub uscc: String,
    pub name: String,
    pub token: String,
    pub seal: String,
    pub seal_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeRecord {
    pub region: String,
    pub name: String,
    pub dir: PathBuf,
    /// The running process, if any.
    pub pid: Option<u32>,
    /// `http://127.0.0.1:<port>` (a new port at each start).
    pub api: String,
    pub p2p: Option<String>,
    pub peer_id: Option<String>,
    pub operator_token: String,
    pub agencies: Vec<AgencyRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub federation: String,
    /// The federation's signature suite (`ed25519` or `sm2`); absent in networks made before
    /// there were two.
    #[serde(default = "default_suite")]
    pub suite: String,
    pub quorum: u64,
    pub membership: PathBuf,
    pub federation_key: PathBuf,
    pub nodes: Vec<NodeRecord>,
}

fn default_suite() -> String {
    Suite::Ed25519.name().into()
}

pub struct Testnet {
    pub dir: PathBuf,
    pub state: State,
    pub http: Http,
    /// The processes this run started, by node (`None` once handed over or stopped).
    children: Vec<Option<Child>>,
    exe: PathBuf,
}

/// Polls `probe` every 10 ms until it gives a value or `limit` passes; errors on the way count as
/// "not yet" (a node restarting refuses connections), and the last one is quoted on timeout.
pub fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    let mut last = None;
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last {
                Some(e) => e.context(format!("timed out after {limit:?} waiting for {what}")),
                None => anyhow!("timed out after {limit:?} waiting for {what}"),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn now_secs() -> Result<u64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs())
}

/// A USCC of an agency of `region` (category 11, 机关) with number `n`, its check computed.
pub fn agency_uscc(region: &str, n: u32) -> Result<String> {
    let first17 = format!("11{region}MB{n:07}");
    let check = tongban_core::ids::uscc::check_char(&first17)
        .map_err(|e| anyhow!("USCC {first17}: {e}"))?;
    Ok(format!("{first17}{check}"))
}

/// A company's USCC (category 91) registered in `region`, number `n`.
pub fn company_uscc(region: &str, n: u32) -> Result<String> {
    let first17 = format!("91{region}MA2T{n:05}");
    let check = tongban_core::ids::uscc::check_char(&first17)
        .map_err(|e| anyhow!("USCC {first17}: {e}"))?;
    Ok(format!("{first17}{check}"))
}

/// Runs this binary with `args` and returns its stdout, or an error with its stderr.
fn tool(exe: &Path, args: &[String]) -> Result<String> {
    let out = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} {}", exe.display(), args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("a tool printed something that is not UTF-8")
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

impl Testnet {
    fn exe() -> Result<PathBuf> {
        std::env::current_exe().context("finding this program to start the nodes with")
    }

    /// Creates a network of `regions` nodes in `dir` (which must be new or empty), starts it,
    /// and registers demo agencies and seals in every region; every key of it but the nodes'
    /// libp2p identities is of `suite`.
    pub fn create(dir: &Path, regions: usize, suite: Suite) -> Result<Testnet> {
        if !(1..=MAX_REGIONS).contains(&regions) {
            bail!("--regions must be between 1 and {MAX_REGIONS}");
        }
        let chosen: Vec<(&str, &str)> = DEFAULT_REGIONS
            .iter()
            .chain(MORE_REGIONS.iter())
            .take(regions)
            .copied()
            .collect();
        Self::create_regions(dir, &chosen, suite)
    }

    /// Like [`Testnet::create`], with these regions (code, name), the first one's node holding
    /// the federation root key.
    pub fn create_regions(dir: &Path, chosen: &[(&str, &str)], suite: Suite) -> Result<Testnet> {
        let regions = chosen.len();
        if regions == 0 {
            bail!("a testnet needs at least one region");
        }
        if dir.join(STATE_FILE).exists() {
            bail!(
                "{} already holds a testnet: `tongban-testnet status --dir {0}` shows it, \
                 `up` restarts its stopped nodes, `down` stops it",
                dir.display()
            );
        }
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            bail!(
                "{} is not empty: give a new or empty directory",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::fs::canonicalize(dir)?;
        let exe = Self::exe()?;
        // Half the other members must cosign a checkpoint: with a minority stopped (the
        // partition scenario) the majority still reaches it.
        let quorum = u64::try_from(regions / 2).unwrap_or(0);
        let federation_key = dir.join(chosen[0].0).join("keys/federation-root.key");
        let membership = dir.join("federation.tbm");
        let mut nodes = Vec::new();
        for (i, (code, name)) in chosen.iter().enumerate() {
            let node_dir = dir.join(code);
            let mut args: Vec<String> = vec![
                "node".into(),
                "init".into(),
                "--region".into(),
                (*code).into(),
                "--name".into(),
                (*name).into(),
                "--dir".into(),
                path_arg(&node_dir),
                "--federation".into(),
                FEDERATION.into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--suite".into(),
                suite.name().into(),
            ];
            if i > 0 {
                args.push("--federation-key".into());
                args.push(path_arg(&federation_key));
            }
            let out = tool(&exe, &args)?;
            let operator_token = out
                .split_whitespace()
                .find(|w| w.starts_with("tb_"))
                .ok_or_else(|| anyhow!("`node init` printed no operator token: {out}"))?
                .to_owned();
            nodes.push(NodeRecord {
                region: (*code).into(),
                name: (*name).into(),
                dir: node_dir,
                pid: None,
                api: String::new(),
                p2p: None,
                peer_id: None,
                operator_token,
                agencies: Vec::new(),
            });
        }
        let mut genesis: Vec<String> = vec![
            "node".into(),
            "federation".into(),
            "genesis".into(),
            "--key".into(),
            path_arg(&federation_key),
            "--name".into(),
            FEDERATION.into(),
            "--quorum".into(),
            quorum.to_string(),
            "--out".into(),
            path_arg(&membership),
        ];
        for node in &nodes {
            let member = tool(
                &exe,
                &[
                    "node".into(),
                    "federation".into(),
                    "member".into(),
                    "--dir".into(),
                    path_arg(&node.dir),
                ],
            )?;
            let file = node.dir.join("member.json");
            std::fs::write(&file, member)?;
            genesis.push("--member".into());
            genesis.push(path_arg(&file));
        }
        tool(&exe, &genesis)?;
        for node in &nodes {
            configure(&node.dir, &membership)?;
        }
        let children = nodes.iter().map(|_| None).collect();
        let mut net = Testnet {
            dir,
            state: State {
                federation: FEDERATION.into(),
                suite: suite.name().into(),
                quorum,
                membership,
                federation_key,
                nodes,
            },
            http: Http::new(Duration::from_secs(30)),
            children,
            exe,
        };
        net.save()?;
        for i in 0..net.len() {
            net.start(i)?;
        }
        net.wait_mesh(&net.all(), Duration::from_secs(60))?;
        for i in 0..net.len() {
            net.create_agencies(i)?;
        }
        net.save()?;
        Ok(net)
    }

    /// The testnet recorded in `dir`.
    pub fn open(dir: &Path) -> Result<Testnet> {
        let file = dir.join(STATE_FILE);
        let text = match std::fs::read(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "no testnet in {} (no {STATE_FILE}): start one with `tongban-testnet up --dir {0}`",
                dir.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let state: State = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a testnet state file", file.display()))?;
        let children = state.nodes.iter().map(|_| None).collect();
        Ok(Testnet {
            dir: std::fs::canonicalize(dir)?,
            state,
            http: Http::new(Duration::from_secs(30)),
            children,
            exe: Self::exe()?,
        })
    }

    pub fn save(&self) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(&self.state)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        // A file left over with wider permissions keeps them through `mode`.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.state.nodes.len()
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.len()).collect()
    }

    pub fn node(&self, i: usize) -> &NodeRecord {
        &self.state.nodes[i]
    }

    /// The node of `region`.
    pub fn index_of(&self, region: &str) -> Result<usize> {
        self.state
            .nodes
            .iter()
            .position(|n| n.region == region)
            .ok_or_else(|| anyhow!("region {region} is not in this testnet"))
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.state.nodes[i].api)
    }

    pub fn agency(&self, i: usize, role: &str) -> Result<&AgencyRecord> {
        self.state.nodes[i]
            .agencies
            .iter()
            .find(|a| a.role == role)
            .ok_or_else(|| anyhow!("region {} has no {role} agency", self.state.nodes[i].region))
    }

    /// Whether node `i` runs: our child that has not exited, or a recorded process that is still
    /// this node (its command line names the node's directory: a reused process id is not).
    pub fn is_running(&mut self, i: usize) -> bool {
        if let Some(child) = &mut self.children[i] {
            return matches!(child.try_wait(), Ok(None));
        }
        let Some(pid) = self.state.nodes[i].pid else {
            return false;
        };
        let dir = path_arg(&self.state.nodes[i].dir);
        match std::fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(cmdline) => cmdline.split(|b| *b == 0).any(|arg| arg == dir.as_bytes()),
            // No /proc: the process id is all there is to go by.
            Err(_) => signals::exists(pid),
        }
    }

    /// Starts node `i`, bootstrapping from every other running node, and waits until its API
    /// and p2p addresses are known.
    pub fn start(&mut self, i: usize) -> Result<()> {
        self.start_with(i, &[])
    }

    /// Like [`Testnet::start`], dialling `extra` peers too (the outsider scenario's members).
    pub fn start_with(&mut self, i: usize, extra: &[String]) -> Result<()> {
        let mut bootstrap = extra.to_vec();
        for j in 0..self.len() {
            if j != i && self.is_running(j) {
                bootstrap.extend(self.state.nodes[j].p2p.clone());
            }
        }
        let node = &self.state.nodes[i];
        let out_path = node.dir.join("node.out");
        let log_path = node.dir.join("node.log");
        let out = std::fs::File::create(&out_path)
            .with_context(|| format!("creating {}", out_path.display()))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut command = Command::new(&self.exe);
        command
            .args(["node", "run", "--listen", "127.0.0.1:0", "--dir"])
            .arg(&node.dir);
        for address in &bootstrap {
            command.args(["--bootstrap", address]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            // Its own process group: a ctrl-c at the terminal reaches the testnet, which stops
            // its nodes itself (see signals.rs), and nodes left running by `up` outlive it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting the node of {}", node.region))?;
        let pid = child.id();
        signals::register(pid);
        let region = node.region.clone();
        let found = wait_for(START_LIMIT, &format!("{region} to listen"), || {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                bail!(
                    "the node of {region} exited ({status}); the end of {}:\n{}",
                    log_path.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            let text = std::fs::read_to_string(&out_path)?;
            Ok(text.lines().find_map(|l| {
                l.split_once("listening on ")
                    .map(|(_, url)| url.trim().to_owned())
            }))
        });
        let api = match found {
            Ok(api) => api,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                signals::unregister(pid);
                return Err(e);
            }
        };
        self.children[i] = Some(child);
        let node = &mut self.state.nodes[i];
        node.pid = Some(pid);
        node.api = api;
        let (p2p, peer_id) = wait_for(
            Duration::from_secs(20),
            &format!("{region}'s p2p address"),
            || {
                let status = self.fed_status(i)?;
                let listening = status["listening"]
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let peer = status["peer_id"].as_str().map(str::to_owned);
                Ok(listening.zip(peer))
            },
        )?;
        let node = &mut self.state.nodes[i];
        node.p2p = Some(p2p);
        node.peer_id = Some(peer_id);
        self.save()
    }

    /// Starts every node that is not running (the first one found without bootstrap).
    pub fn start_stopped(&mut self) -> Result<Vec<usize>> {
        let mut started = Vec::new();
        for i in 0..self.len() {
            if !self.is_running(i) {
                self.start(i)?;
                started.push(i);
            }
        }
        Ok(started)
    }

    pub fn fed_status(&self, i: usize) -> Result<Value> {
        self.http
            .get(&self.url(i, "/v1/federation/status"), None)?
            .expect(200, "federation status")
    }

    pub fn log_size(&self, i: usize) -> Result<u64> {
        self.http
            .get(&self.url(i, "/healthz"), None)?
            .expect(200, "healthz")?["log_size"]
            .as_u64()
            .ok_or_else(|| anyhow!("healthz without log_size"))
    }

    /// The size of node `i`'s replica of `region`'s log.
    pub fn replica_size(&self, i: usize, region: &str) -> Result<u64> {
        self.http
            .get(
                &self.url(i, &format!("/v1/federation/regions/{region}")),
                None,
            )?
            .expect(200, "replica progress")?["size"]
            .as_u64()
            .ok_or_else(|| anyhow!("replica progress without size"))
    }

    /// Waits until every node of `members` is connected to every other one of them.
    pub fn wait_mesh(&self, members: &[usize], limit: Duration) -> Result<()> {
        let ids: Vec<(usize, String)> = members
            .iter()
            .map(|&i| {
                self.state.nodes[i]
                    .peer_id
                    .clone()
                    .map(|p| (i, p))
                    .ok_or_else(|| anyhow!("{} has no peer id", self.state.nodes[i].region))
            })
            .collect::<Result<_>>()?;
        for &i in members {
            wait_for(
                limit,
                &format!("{} to connect to the others", self.state.nodes[i].region),
                || {
                    let status = self.fed_status(i)?;
                    let connected: Vec<&str> = status["connected"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    Ok(ids
                        .iter()
                        .all(|(j, p)| *j == i || connected.contains(&p.as_str()))
                        .then_some(()))
                },
            )?;
        }
        Ok(())
    }

    /// Waits until node `i`'s replica of every other region's log holds at least `targets`.
    pub fn wait_replicas(
        &self,
        i: usize,
        targets: &[(String, u64)],
        limit: Duration,
    ) -> Result<()> {
        for (region, size) in targets {
            if *region == self.state.nodes[i].region {
                continue;
            }
            wait_for(
                limit,
                &format!(
                    "{}'s replica of {region} to reach {size} entries",
                    self.state.nodes[i].region
                ),
                || Ok((self.replica_size(i, region)? >= *size).then_some(())),
            )?;
        }
        Ok(())
    }

    fn create_agencies(&mut self, i: usize) -> Result<()> {
        let node = self.state.nodes[i].clone();
        let city = node.name.trim_end_matches('市');
        let kinds: [(&str, u32, &str, String, &[&str]); 2] = [
            ("issuer", 1, "AMR", format!("{city}市市场监督管理局"), &[]),
            (
                "approval",
                2,
                "SP",
                format!("{city}市行政审批服务局"),
                &[BUSINESS_LICENCE, PERMIT],
            ),
        ];
        let mut agencies = Vec::new();
        for (role, n, short, name, share_types) in kinds {
            let uscc = agency_uscc(&node.region, n)?;
            let token = self
                .http
                .post(
                    &self.url(i, "/v1/admin/agencies"),
                    Some(&node.operator_token),
                    &json!({"uscc": uscc, "name": name}),
                )?
                .expect(201, &format!("registering {name}"))?["token"]
                .as_str()
                .ok_or_else(|| anyhow!("no token for {name}"))?
                .to_owned();
            let seal_id = format!("{short}-{}-1", node.region);
            let seal = self
                .http
                .post(
                    &self.url(i, "/v1/admin/seals"),
                    Some(&node.operator_token),
                    &json!({
                        "agency_uscc": uscc, "seal_id": seal_id, "seal_type": "approval",
                        "name": "行政审批专用章", "valid_until": 2_000_000_000u64,
                        "picture": "cG5n", "media_type": "image/png",
                        "share_types": share_types,
                    }),
                )?
                .expect(201, &format!("making the seal of {name}"))?["kid"]
                .as_str()
                .ok_or_else(|| anyhow!("no key id for the seal of {name}"))?
                .to_owned();
            agencies.push(AgencyRecord {
                role: role.into(),
                uscc,
                name,
                token,
                seal,
                seal_id,
            });
        }
        self.state.nodes[i].agencies = agencies;
        Ok(())
    }

    /// SIGKILL: the node gets no chance to finish anything.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.children[i].take() {
            let pid = child.id();
            // A stopped process dies of SIGKILL too; SIGCONT is for the reaping that follows.
            let _ = signals::send(pid, Signal::SIGCONT);
            child.kill().context("killing a node")?;
            child.wait().context("waiting for a killed node")?;
            signals::unregister(pid);
        } else if self.is_running(i)
            && let Some(pid) = self.state.nodes[i].pid
        {
            signals::send(pid, Signal::SIGKILL)?;
        }
        self.state.nodes[i].pid = None;
        Ok(())
    }

    /// SIGTERM, then waits up to `limit` for the node to exit (SIGKILL after that). Returns how
    /// long it took and whether it had to be killed.
    pub fn terminate(&mut self, i: usize, limit: Duration) -> Result<(Duration, bool)> {
        let Some(pid) = self.state.nodes[i].pid.filter(|_| self.is_running(i)) else {
            self.state.nodes[i].pid = None;
            return Ok((Duration::ZERO, false));
        };
        let started = Instant::now();
        let _ = signals::send(pid, Signal::SIGCONT);
        signals::send(pid, Signal::SIGTERM)?;
        let exited = wait_for(limit, "the node to exit", || {
            Ok((!self.is_running(i)).then_some(()))
        });
        let forced = exited.is_err();
        if forced {
            signals::send(pid, Signal::SIGKILL)?;
            wait_for(Duration::from_secs(10), "the killed node to go", || {
                Ok((!self.is_running(i)).then_some(()))
            })?;
        }
        if let Some(mut child) = self.children[i].take() {
            child.wait()?;
            signals::unregister(pid);
        }
        self.state.nodes[i].pid = None;
        Ok((started.elapsed(), forced))
    }

    /// SIGSTOP: the node neither answers nor sends (the partition emulation).
    pub fn pause(&self, i: usize) -> Result<()> {
        let pid = self.state.nodes[i]
            .pid
            .ok_or_else(|| anyhow!("{} is not running", self.state.nodes[i].region))?;
        signals::send(pid, Signal::SIGSTOP)
    }

    pub fn resume(&self, i: usize) -> Result<()> {
        let pid = self.state.nodes[i]
            .pid
            .ok_or_else(|| anyhow!("{} is not running", self.state.nodes[i].region))?;
        signals::send(pid, Signal::SIGCONT)
    }

    /// Leaves the nodes running when this value goes (what `up` does).
    pub fn detach(mut self) -> Result<()> {
        self.save()?;
        for child in self.children.iter_mut() {
            if let Some(child) = child.take() {
                signals::unregister(child.id());
            }
        }
        Ok(())
    }
}

impl Drop for Testnet {
    /// Kills every node this run started and still holds: a demo or scenario never leaves one.
    fn drop(&mut self) {
        let mut any = false;
        for i in 0..self.children.len() {
            if self.children[i].is_some() {
                any = true;
                let _ = self.kill9(i);
            }
        }
        if any {
            let _ = self.save();
        }
    }
}

/// Writes the testnet's settings into a node's config.toml: frequent checkpoints and catch-up
/// rounds (so the story shows results in seconds), promises checked every 200 ms, and the
/// federation on a free loopback port.
fn configure(dir: &Path, membership: &Path) -> Result<()> {
    let path = dir.join("config.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut config: tongban_node::config::Config = toml::from_str(&text)
        .with_context(|| format!("{} is not a node config", path.display()))?;
    config.log.checkpoint_interval_ms = 250;
    config.promises.check_interval_ms = 200;
    config.p2p = Some(tongban_node::config::P2pConfig {
        cosign_timeout_ms: 2000,
        catch_up_interval_ms: 500,
        ..tongban_node::config::P2pConfig::new(
            vec!["/ip4/127.0.0.1/tcp/0".into()],
            membership.to_owned(),
        )
    });
    std::fs::write(&path, toml::to_string(&config)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_and_company_codes_carry_their_region_and_check() {
        // The node tests' fixtures, whose check characters were computed independently.
        assert_eq!(
            agency_uscc("341200", 1).ok().as_deref(),
            Some("11341200MB0000001F")
        );
        assert_eq!(
            agency_uscc("370100", 3).ok().as_deref(),
            Some("11370100MB0000003G")
        );
        let company = company_uscc("340700", 1).unwrap_or_default();
        assert!(
            tongban_core::ids::Uscc::parse(&company).is_ok(),
            "{company}"
        );
        assert_eq!(&company[2..8], "340700");
    }

    #[test]
    fn the_regions_are_distinct_valid_division_codes() {
        let all: Vec<&str> = DEFAULT_REGIONS
            .iter()
            .chain(MORE_REGIONS.iter())
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(all.len(), MAX_REGIONS);
        for code in &all {
            assert!(tongban_core::ids::RegionCode::parse(code).is_ok(), "{code}");
            assert_eq!(all.iter().filter(|c| *c == code).count(), 1, "{code}");
        }
    }
}
