//! Faults of the PostgreSQL engine: a second writer, a writer's lost connection, another process
//! writing the log meanwhile, and the database server stopped at once (`pg_ctl stop -m
//! immediate`) under a running node. Run when the tests run on PostgreSQL
//! (`TONGBAN_TEST_STORAGE=postgres`, as CI's second pass does); the node's other tests run on
//! both engines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod node_process;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use node_process::{AGENCY_A, Node, certificate};
use tongban_node::config::{DatabaseUrl, PostgresConfig, StorageConfig};
use tongban_node::home::Home;
use tongban_node::log::{LogConfig, LogError, NoIndex};
use tongban_node::storage::{LogName, Storage, test_postgres};

/// The tests' PostgreSQL settings (a new schema), or `None` with a note when the tests run on
/// redb: these faults have no redb counterpart.
fn postgres(test: &str) -> Option<PostgresConfig> {
    let config = test_postgres();
    if config.is_none() {
        eprintln!("{test}: skipped, the tests run on redb (TONGBAN_TEST_STORAGE=postgres runs it)");
    }
    config
}

fn storage(config: &PostgresConfig) -> Storage {
    Storage::open(
        &Home::new(Path::new("/nonexistent")),
        &StorageConfig::Postgres(config.clone()),
    )
    .unwrap()
}

/// Runs SQL through psql on the server at `url`; its output.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Ends the sessions of `schema`'s log writers (those holding a log's lock; not a standby's,
/// waiting for it), as a lost connection would.
fn kill_writers(config: &PostgresConfig) -> usize {
    let killed = psql(
        &config.url.0,
        &format!(
            "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a
             WHERE a.application_name = 'tongban-node/{} writer'
             AND EXISTS (SELECT FROM pg_locks l
                         WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted)",
            config.schema.as_str()
        ),
    );
    killed.lines().filter(|l| *l == "t").count()
}

#[test]
fn a_server_that_acknowledges_before_its_disk_is_refused() {
    let Some(config) = postgres("a_server_that_acknowledges_before_its_disk_is_refused") else {
        return;
    };
    let lax = PostgresConfig {
        url: DatabaseUrl(format!(
            "{}?options=-c%20synchronous_commit%3Doff",
            config.url.0
        )),
        ..config.clone()
    };
    let refused = Storage::open(
        &Home::new(Path::new("/nonexistent")),
        &StorageConfig::Postgres(lax),
    )
    .err()
    .expect("synchronous_commit = off is refused");
    assert!(
        refused.to_string().contains("synchronous_commit = off"),
        "{refused}"
    );
    storage(&config);
}

#[test]
fn one_writer_per_log_and_a_writer_that_lost_its_log_never_writes_again() {
    let Some(config) = postgres("one_writer_per_log") else {
        return;
    };
    let first = storage(&config);
    let log = first
        .open_log(&LogName::Region, LogConfig::default(), Arc::new(NoIndex))
        .unwrap();
    log.append_many(vec![b"a".to_vec(), b"b".to_vec()]).unwrap();

    // A second process cannot open the log while the first holds it.
    let second = storage(&config);
    let refused = second
        .open_log(&LogName::Region, LogConfig::default(), Arc::new(NoIndex))
        .err()
        .expect("a second writer is refused");
    assert!(matches!(refused, LogError::Superseded(_)), "{refused}");

    // The writer's connection is lost: the log reconnects (a write may fail meanwhile, never
    // one acknowledged) and goes on where it was.
    assert_eq!(kill_writers(&config), 1);
    let mut acked = vec![b"a".to_vec(), b"b".to_vec()];
    let started = Instant::now();
    while acked.len() < 5 {
        let entry = format!("after {}", acked.len()).into_bytes();
        if log.append(entry.clone()).is_ok() {
            acked.push(entry);
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no reconnect");
    }
    assert_eq!(log.entries(0..5).unwrap(), acked);

    // Lost again, and another process takes the log and writes it: the first never writes
    // again (its state in memory would be stale), and what the other wrote stands.
    assert_eq!(kill_writers(&config), 1);
    let taker = second
        .open_log(&LogName::Region, LogConfig::default(), Arc::new(NoIndex))
        .unwrap();
    assert_eq!(taker.append(b"theirs".to_vec()).unwrap(), 5);
    drop(taker);
    for _ in 0..3 {
        let refused = log.append(b"mine".to_vec()).unwrap_err();
        assert!(refused.to_string().contains("superseded"), "{refused}");
    }
    assert_eq!(log.size().unwrap(), 6);
    assert_eq!(log.entry(5).unwrap(), Some(b"theirs".to_vec()));
}

/// A PostgreSQL server of the test's own (it is stopped and started), from `.ci/postgres`.
struct Server {
    dir: tempfile::TempDir,
    port: u16,
    url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/postgres")
}

/// A directory the server (the postgres user, when the tests run as root) can reach.
fn reachable_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    dir
}

impl Server {
    fn start() -> Server {
        Server::start_in(reachable_dir(), "")
    }

    /// A server in `dir` with more settings (`-c name=value ...`).
    fn start_in(dir: tempfile::TempDir, options: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Server {
            dir,
            port,
            url: String::new(),
        };
        server.url = server.run_with("start", options);
        server
    }

    fn run(&self, action: &str) -> String {
        self.run_with(action, "")
    }

    fn run_with(&self, action: &str, options: &str) -> String {
        let data = self.dir.path().join("pg");
        let mut command = Command::new(script());
        command
            .arg(action)
            .arg(&data)
            .env("PG_SERVER_OPTIONS", options);
        match action {
            "start" => command.arg(self.port.to_string()),
            _ => command.arg("immediate"),
        };
        let out = command.output().unwrap();
        assert!(out.status.success(), "{action}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .arg("immediate")
            .output();
    }
}

/// A new node in `dir` on `server`, started.
fn node_on(server: &Server, dir: &Path) -> Node {
    let mut node = Node::init(dir);
    let config_path = dir.join("config.toml");
    let text = std::fs::read_to_string(&config_path).unwrap();
    let (head, _) = text.split_once("[storage]").unwrap();
    let ours = StorageConfig::Postgres(PostgresConfig {
        url: DatabaseUrl(server.url.clone()),
        ..test_postgres().unwrap()
    });
    let section = toml::to_string(&ours).unwrap();
    // [storage] is the last table init writes.
    std::fs::write(&config_path, format!("{head}[storage]\n{section}")).unwrap();
    node.start();
    node
}

impl Server {
    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) every process of the server: a server that
    /// holds its connections open and answers nothing, as a hung host or a partition does.
    fn signal(&self, signal: &str) {
        let pid_file = self.dir.path().join("pg/data/postmaster.pid");
        let text = std::fs::read_to_string(pid_file).unwrap();
        let postmaster = text.lines().next().unwrap().trim().to_owned();
        // Its children (backends, writer, checkpointer …): /proc/PID/stat's fourth field, after
        // the parenthesised name, is the parent.
        let mut pids = vec![postmaster.clone()];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if parent == Some(postmaster.as_str()) {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        let out = Command::new("kill")
            .arg(signal)
            .args(&pids)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    /// Stops every process of the server until the guard is dropped: a test that fails
    /// meanwhile still leaves a server that can be stopped and removed.
    fn hang(&self) -> Hung<'_> {
        self.signal("-STOP");
        Hung(self)
    }
}

/// A server stopped by [`Server::hang`]; resumed on drop.
struct Hung<'a>(&'a Server);

impl Drop for Hung<'_> {
    fn drop(&mut self) {
        // A failed resume panics; while unwinding from a failed check already, a second panic
        // would abort the whole test binary.
        if std::thread::panicking() {
            let resume = std::panic::AssertUnwindSafe(|| self.0.signal("-CONT"));
            let _ = std::panic::catch_unwind(resume);
        } else {
            self.0.signal("-CONT");
        }
    }
}

/// A read that waits on the database must not hold a thread every request needs: with the
/// server hung (every process stopped), many reads wait, and the node still answers what needs
/// no database at once; when the server resumes, every waiting read is answered.
#[test]
fn reads_waiting_on_a_hung_database_leave_the_node_answering() {
    if postgres("reads_waiting_on_a_hung_database").is_none() {
        return;
    }
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let node = node_on(&server, dir.path());
    let (token, seal) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let id = issue(&node, &token, &seal, "PGH1").unwrap();
    let status = format!("/v1/certificates/{id}/status");
    assert_eq!(node.get(&status, None).status, 200);

    let hung = server.hang();
    // More reads than the node has async threads (one per core), each to wait; the health
    // check reads the log's size, so it waits too. Issuances wait as well (their rows, their
    // commit), on the async workers since they need no thread to wait.
    let paths = std::iter::repeat_n(status.as_str(), 32).chain(["/healthz", "/metrics"]);
    let waiting: Vec<_> = paths
        .map(|path| {
            let (node, path) = (node.handle(), path.to_owned());
            std::thread::spawn(move || (path.clone(), node.get(&path, None).status))
        })
        .collect();
    let issuing: Vec<_> = (0..16)
        .map(|i| {
            let (node, token, seal) = (node.handle(), token.clone(), seal.clone());
            std::thread::spawn(move || issue(&node, &token, &seal, &format!("PGW{i:02}")))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let bundle = node.get("/v1/trust-bundle", None);
    let answered_in = started.elapsed();
    drop(hung);
    assert_eq!(bundle.status, 200, "{}", bundle.text());
    assert!(answered_in < Duration::from_secs(1), "{answered_in:?}");
    for read in waiting {
        // Answered from the database once it resumed, or 503 if a wait timed out first.
        let (path, answer) = read.join().unwrap();
        assert!(answer == 200 || answer == 503, "{path}: {answer}");
    }
    for issuance in issuing {
        // Issued once the database resumed, or refused while it could not be written.
        match issuance.join().unwrap() {
            Ok(_) => {}
            Err((status, code)) => assert_eq!(status, 503, "{code}"),
        }
    }
    assert_eq!(node.get(&status, None).status, 200);
    assert_eq!(node.get("/healthz", None).status, 200);
}

/// Issues one certificate; its id on 201, else the status and code.
fn issue(node: &Node, token: &str, seal: &str, serial: &str) -> Result<String, (u16, String)> {
    let body = certificate(seal, serial).to_string();
    let reply = node
        .try_request(
            "POST",
            "/v1/certificates",
            Some(token),
            Some(body.as_bytes()),
        )
        .map_err(|e| (0, e.to_string()))?;
    match reply.status {
        201 => Ok(reply.json()["id"].as_str().unwrap().to_owned()),
        status => Err((status, reply.code())),
    }
}

#[test]
fn a_node_refuses_writes_while_its_database_is_down_and_resumes_by_itself() {
    if postgres("a_node_refuses_writes_while_its_database_is_down").is_none() {
        return;
    }
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut node = node_on(&server, dir.path());
    let (token, seal) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let mut acked = Vec::new();
    for n in 0..3 {
        acked.push(issue(&node, &token, &seal, &format!("PGB{n}")).unwrap());
    }

    server.run("stop");
    // Writes are refused, 503 with the storage code, and answered within bounded time.
    for n in 0..3 {
        let started = Instant::now();
        let refused = issue(&node, &token, &seal, &format!("PGD{n}")).unwrap_err();
        assert_eq!(refused, (503, "STORAGE_UNAVAILABLE".to_owned()));
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    // Reads answer from what is held or say the storage is unavailable; never anything else.
    let status = node.get(&format!("/v1/certificates/{}/status", acked[0]), None);
    assert!(
        status.status == 200 || status.status == 503,
        "{} {}",
        status.status,
        status.text()
    );

    server.run("start");
    let started = Instant::now();
    let resumed = loop {
        match issue(&node, &token, &seal, "PGA1") {
            Ok(id) => break id,
            Err((503, _)) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(other) => panic!("not resumed: {other:?}"),
        }
    };
    acked.push(resumed);
    for id in &acked {
        let reply = node.get(&format!("/v1/certificates/{id}/status"), None);
        assert_eq!(reply.status, 200, "{id}: {}", reply.text());
    }
    node.kill9();
    let (ok, out) = node.check();
    assert!(ok, "{out}");
    assert!(out.contains("state agrees with the log"), "{out}");
}

/// Two processes of one region on one database: the second stands by (`NOT_SEQUENCER`), and
/// each time the sequencer is killed during a burst of issuance the other takes over within
/// 5 s, with every certificate acknowledged before the kill; the log stays clean throughout.
#[test]
fn a_standby_takes_over_within_five_seconds_when_the_sequencer_is_killed_mid_burst() {
    if postgres("a_standby_takes_over").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = sequencer_and_standby(dir.path());
    let standby = nodes[1].get("/healthz/sequencer", None);
    assert_eq!(
        (standby.status, standby.code()),
        (503, "NOT_SEQUENCER".to_owned())
    );
    let (token, seal) = nodes[0].agency_with_seal(AGENCY_A, "FY-AMR-1");
    let size = nodes[0].get("/healthz", None).json()["log_size"]
        .as_u64()
        .unwrap();
    caught_up(&nodes[1], size);
    assert_eq!(
        issue(&nodes[1], &token, &seal, "SB0"),
        Err((503, "NOT_SEQUENCER".to_owned()))
    );

    let acked: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let mut takeovers = Vec::new();
    let mut active = 0;
    for kill in 0..10 {
        let burst: Vec<_> = (0..4)
            .map(|worker| {
                let (node, token, seal, acked) = (
                    nodes[active].handle(),
                    token.clone(),
                    seal.clone(),
                    acked.clone(),
                );
                std::thread::spawn(move || {
                    for n in 0.. {
                        match issue(&node, &token, &seal, &format!("K{kill}W{worker}N{n}")) {
                            Ok(id) => acked.lock().unwrap().push(id),
                            // The process is gone.
                            Err((0, _)) => return,
                            Err(other) => panic!("refused during the burst: {other:?}"),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        nodes[active].kill9();
        let killed = Instant::now();
        for worker in burst {
            worker.join().unwrap();
        }
        let next = 1 - active;
        loop {
            let health = nodes[next].try_request("GET", "/healthz/sequencer", None, None);
            if health.is_ok_and(|h| h.status == 200) {
                break;
            }
            assert!(killed.elapsed() < Duration::from_secs(15), "no take-over");
            std::thread::sleep(Duration::from_millis(10));
        }
        takeovers.push(killed.elapsed());
        // The killed one comes back as the standby.
        nodes[active].start();
        active = next;
    }
    takeovers.sort();
    eprintln!(
        "take-over after SIGKILL, 10 kills: median {:?}, max {:?}",
        takeovers[takeovers.len() / 2],
        takeovers[takeovers.len() - 1]
    );
    assert!(
        takeovers[takeovers.len() - 1] < Duration::from_secs(5),
        "{takeovers:?}"
    );

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 40, "the bursts issued only {}", acked.len());
    for id in &acked {
        let reply = nodes[active].get(&format!("/v1/certificates/{id}/status"), None);
        assert_eq!(reply.status, 200, "{id}: {}", reply.text());
    }
    let source = tongban_verify::audit::Source::Node(format!("http://{}", nodes[active].addr));
    for report in tongban_verify::audit::replay_all(
        &[source],
        tongban_verify::audit::Reading::new(Duration::from_secs(10)),
        None,
        None,
    )
    .unwrap()
    {
        assert!(report.is_clean(), "{:?}", report.findings);
    }
    for node in &mut nodes {
        node.kill9();
    }
    let (ok, out) = nodes[0].check();
    assert!(ok, "{out}");
}

/// A new node in `dir` run by two processes: the first started sequences, the second stands by.
fn sequencer_and_standby(dir: &Path) -> [Node; 2] {
    let first = Node::init(dir);
    let second = first.handle();
    let mut nodes = [first, second];
    nodes[0].start();
    nodes[1].start();
    nodes
}

/// The `[storage]` settings of the node in `dir`.
fn node_postgres(dir: &Path) -> PostgresConfig {
    match tongban_node::home::load(&Home::new(dir))
        .unwrap()
        .config
        .storage
    {
        StorageConfig::Postgres(config) => config,
        StorageConfig::Redb => panic!("the node runs on redb"),
    }
}

#[test]
fn a_sequencer_whose_log_another_process_took_stops_serving() {
    if postgres("a_sequencer_whose_log_another_process_took").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = sequencer_and_standby(dir.path());
    let (token, seal) = nodes[0].agency_with_seal(AGENCY_A, "FY-AMR-1");
    let before = issue(&nodes[0], &token, &seal, "LOST0").unwrap();

    // The sequencer's database session is cut (a network partition, a server-side timeout):
    // the standby, waiting on the lock, takes the log. (Should the sequencer reconnect first,
    // it keeps the log, which is as good: cut again.)
    let pg = node_postgres(dir.path());
    let started = Instant::now();
    'taken: loop {
        kill_writers(&pg);
        let cut = Instant::now();
        while cut.elapsed() < Duration::from_secs(3) {
            let health = nodes[1].try_request("GET", "/healthz/sequencer", None, None);
            if health.is_ok_and(|h| h.status == 200) {
                break 'taken;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no take-over");
    }

    // The old sequencer finds out at its next writer check and stops serving, with an error
    // for its supervisor (a restart brings it back as a standby).
    let mut old = nodes[0].child.take().unwrap();
    let taken = Instant::now();
    let status = loop {
        if let Some(status) = old.try_wait().unwrap() {
            break status;
        }
        assert!(
            taken.elapsed() < Duration::from_secs(15),
            "the old sequencer still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status}");
    eprintln!(
        "the old sequencer stopped {:?} after the take-over",
        taken.elapsed()
    );

    // The new one holds everything and writes.
    let reply = nodes[1].get(&format!("/v1/certificates/{before}/status"), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    issue(&nodes[1], &token, &seal, "LOST1").unwrap();
    nodes[1].kill9();
    let (ok, out) = nodes[1].check();
    assert!(ok, "{out}");
}

/// Runs a command; panics with its output if it fails.
fn run_ok(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
}

/// A certificate authority in `dir` (`<name>.pem`, `<name>.key`).
fn make_ca(dir: &Path, name: &str) {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    run_ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=keyCertSign",
        ],
        dir,
    );
}

#[test]
fn the_database_is_reached_over_tls_verified_against_the_configured_ca() {
    let Some(plain) = postgres("the_database_is_reached_over_tls") else {
        return;
    };
    // A CA, and the server's certificate for 127.0.0.1 signed by it; another CA besides.
    let dir = reachable_dir();
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    make_ca(&tls, "ca");
    make_ca(&tls, "other");
    run_ok(
        "openssl",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &tls,
    );
    std::fs::write(
        tls.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run_ok(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
        &tls,
    );
    // The server reads its key as the postgres user, and refuses a key others can read.
    std::fs::set_permissions(
        tls.join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    if nix_is_root() {
        run_ok("chown", &["-R", "postgres:", "."], &tls);
    }
    std::fs::set_permissions(&tls, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let server = Server::start_in(
        dir,
        &format!(
            "-c ssl=on -c ssl_cert_file={0}/server.pem -c ssl_key_file={0}/server.key",
            tls.display()
        ),
    );
    let settings = |ca: Option<&str>, mode: &str| PostgresConfig {
        url: DatabaseUrl(format!("{}?sslmode={mode}", server.url)),
        tls_ca: ca.map(|name| tls.join(format!("{name}.pem"))),
        ..plain.clone()
    };
    let open = |config: PostgresConfig| {
        Storage::open(
            &Home::new(Path::new("/nonexistent")),
            &StorageConfig::Postgres(config),
        )
    };

    // Verified against the CA: the log works, and every session of the node is encrypted.
    let storage = open(settings(Some("ca"), "require")).unwrap();
    let log = storage
        .open_log(&LogName::Region, LogConfig::default(), Arc::new(NoIndex))
        .unwrap();
    log.append(b"over tls".to_vec()).unwrap();
    assert_eq!(log.entry(0).unwrap(), Some(b"over tls".to_vec()));
    let sessions = psql(
        &server.url,
        &format!(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name LIKE 'tongban-node/{}%'",
            plain.schema.as_str()
        ),
    );
    assert!(!sessions.trim().is_empty());
    assert!(sessions.lines().all(|l| l == "t"), "{sessions}");
    drop(log);
    drop(storage);

    // A server whose certificate another CA signed is refused, as is TLS with nothing to verify
    // it against.
    let refused = open(settings(Some("other"), "require")).err().unwrap();
    assert!(refused.to_string().contains("certificate"), "{refused}");
    let refused = open(settings(None, "require")).err().unwrap();
    assert!(refused.to_string().contains("tls_ca"), "{refused}");
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Waits until the standby `node` has caught up with the log size `size` (its view follows the
/// sequencer's log every 250 ms).
fn caught_up(node: &Node, size: u64) {
    let started = Instant::now();
    while node.get("/healthz", None).json()["log_size"].as_u64() < Some(size) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the standby lags"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its credentials and seals are read on the same beat.
    std::thread::sleep(Duration::from_millis(300));
}

fn verify(node: &Node, certificate: &str) -> serde_json::Value {
    let reply = node.post(
        "/v1/verify",
        None,
        &serde_json::json!({"certificate": certificate, "nonce": "00112233445566778899aabbccddeeff"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn a_standby_serves_reads_and_verification_and_refuses_writes() {
    if postgres("a_standby_serves_reads").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = sequencer_and_standby(dir.path());
    let (sequencer, standby) = (&nodes[0], &nodes[1]);
    assert_eq!(standby.get("/healthz", None).json()["role"], "standby");
    assert_eq!(sequencer.get("/healthz", None).json()["role"], "sequencer");
    assert_eq!(sequencer.get("/healthz/sequencer", None).status, 200);
    let (token, seal) = sequencer.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let issued = sequencer.post("/v1/certificates", Some(&token), &certificate(&seal, "RD0"));
    assert_eq!(issued.status, 201, "{}", issued.text());
    let (id, cert) = (
        issued.json()["id"].as_str().unwrap().to_owned(),
        issued.json()["certificate"].as_str().unwrap().to_owned(),
    );
    let size = sequencer.get("/healthz", None).json()["log_size"]
        .as_u64()
        .unwrap();
    caught_up(standby, size);

    // Reads and verification, from the database; the receipt logged by the sequencer.
    let status = standby.get(&format!("/v1/certificates/{id}/status"), None);
    assert_eq!(status.status, 200, "{}", status.text());
    assert_eq!(status.json()["state_name"], "valid", "{}", status.text());
    let fetched = standby.get(&format!("/v1/certificates/{id}"), Some(&token));
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    let verified = verify(standby, &cert);
    assert_eq!(verified["verdict"], "valid", "{verified}");
    let receipt = verified["receipt"].as_str().unwrap();
    let receipt =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, receipt).unwrap();
    let receipt = tongban_core::log::verification::VerificationReceipt::decode(&receipt).unwrap();
    let logged = sequencer.get("/healthz", None).json()["log_size"]
        .as_u64()
        .unwrap();
    assert!(
        receipt.log_index < logged,
        "{receipt:?} in a log of {logged}"
    );

    // A status change made through the sequencer is what the standby answers next.
    let changed = sequencer.post(
        &format!("/v1/certificates/{id}/status"),
        Some(&token),
        &serde_json::json!({"operation": "suspend"}),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(verify(standby, &cert)["code"], "STATUS_SUSPENDED");

    // Writes are the sequencer's.
    assert_eq!(
        issue(standby, &token, &seal, "RD1"),
        Err((503, "NOT_SEQUENCER".to_owned()))
    );
    let reply = standby.get("/healthz/sequencer", None);
    assert_eq!(
        (reply.status, reply.code()),
        (503, "NOT_SEQUENCER".to_owned())
    );
    // The internal route takes only the node's own token.
    let reply = sequencer.post(
        "/v1/internal/receipts",
        Some(&token),
        &serde_json::json!({"item": "", "cross_region": false}),
    );
    assert_eq!(reply.status, 401, "{}", reply.text());
    for node in &mut nodes {
        node.kill9();
    }
}
