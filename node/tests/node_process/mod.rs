//! A real `tongban-node` process on loopback, and a small HTTP/1.1 client to drive it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tongban-node");
pub const AGENCY_A: &str = "11341200MB0000001F";
/// Another valid USCC (GB 32100 check character computed).
pub const AGENCY_B: &str = "11341200MB0000002J";
pub const TYPE_CODE: &str = "11100000000013338W001";
pub const HOLDER_USCC: &str = "91341200MA2T00001L";

pub struct Node {
    pub dir: PathBuf,
    pub operator: String,
    pub child: Option<Child>,
    pub addr: String,
}

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// The value of header `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The suite the process tests found their federations in: `TONGBAN_TEST_SUITE` (`ed25519` or
/// `sm2`; CI runs the node's tests in both), `ed25519` when unset.
pub fn suite() -> String {
    std::env::var("TONGBAN_TEST_SUITE").unwrap_or_else(|_| "ed25519".into())
}

/// Points the node whose config is at `config` at the engine the tests run on: a schema of its
/// own on the tests' PostgreSQL server when `TONGBAN_TEST_STORAGE=postgres` (CI runs the node's
/// tests on both engines), redb files as `init` wrote otherwise.
pub fn use_test_storage(config: &Path) {
    let Some(pg) = tongban_node::storage::test_postgres() else {
        return;
    };
    let section = toml::to_string(&tongban_node::config::StorageConfig::Postgres(pg)).unwrap();
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains("[storage]\nengine = \"redb\"\n"), "{text}");
    let text = text.replace(
        "[storage]\nengine = \"redb\"\n",
        &format!("[storage]\n{section}"),
    );
    std::fs::write(config, text).unwrap();
}

/// Where the (stopped) node in `dir` keeps its logs, as its config.toml says.
pub fn node_storage(dir: &Path) -> tongban_node::storage::Storage {
    let home = tongban_node::home::Home::new(dir);
    let config = tongban_node::home::load(&home).unwrap().config;
    tongban_node::storage::Storage::open(&home, &config.storage).unwrap()
}

impl Node {
    /// `tongban-node init` in `dir` (a fresh directory).
    pub fn init(dir: &Path) -> Node {
        let suite = suite();
        let stdout = command_ok(
            &[
                "init",
                "--region",
                "341200",
                "--name",
                "阜阳市",
                "--suite",
                &suite,
            ],
            dir,
        );
        let operator = stdout
            .split_whitespace()
            .find(|w| w.starts_with("tb_"))
            .expect("init prints the operator token")
            .to_owned();
        // Promises are checked often so the lapse test does not wait long.
        let config = dir.join("config.toml");
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("check_interval_ms = 1000", "check_interval_ms = 100");
        std::fs::write(&config, text).unwrap();
        use_test_storage(&config);
        Node {
            dir: dir.to_owned(),
            operator,
            child: None,
            addr: String::new(),
        }
    }

    /// Another handle on the same node (its directory and address), without its process: for
    /// other threads, which must not kill it.
    pub fn handle(&self) -> Node {
        Node {
            dir: self.dir.clone(),
            operator: self.operator.clone(),
            child: None,
            addr: self.addr.clone(),
        }
    }

    /// Starts `tongban-node run` and waits until it listens.
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// Starts `tongban-node run` with more arguments and waits until it listens.
    pub fn start_with(&mut self, extra: &[String]) {
        let mut child = Command::new(BIN)
            .args(["run", "--listen", "127.0.0.1:0", "--dir"])
            .arg(&self.dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        self.addr = line
            .split("http://")
            .nth(1)
            .expect("run prints its address")
            .trim()
            .to_owned();
        self.child = Some(child);
    }

    /// `tongban-node fill --count <count>` on the (stopped) node's directory.
    pub fn fill(&self, count: u64) {
        command_ok(&["fill", "--count", &count.to_string()], &self.dir);
    }

    /// `tongban-node check` on the node's directory (the node must be stopped): its exit status
    /// and output.
    pub fn check(&self) -> (bool, String) {
        let out = Command::new(BIN)
            .args(["check", "--dir"])
            .arg(&self.dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// The running process's id (to kill it from another thread while requests are in flight;
    /// [`Node::kill9`] then reaps it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the node runs").id()
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Reply {
        self.try_request(method, path, token, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Like `request`, but a connection that fails (a killed node) is an error, not a panic.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> std::io::Result<Reply> {
        self.try_request_with(method, path, token, body, &[])
    }

    /// Like `try_request`, with more request headers.
    pub fn try_request_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        if let Some(body) = body {
            request.extend_from_slice(body);
        }
        self.try_raw(&request)
    }

    /// Sends `request` as is (the whole HTTP/1.1 request, headers and any body) and reads the
    /// answer until the node closes the connection.
    pub fn raw(&self, request: &[u8]) -> Reply {
        self.try_raw(request)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(request)))
    }

    pub fn try_raw(&self, request: &[u8]) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let broken = || std::io::Error::other("no complete response");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(broken)?;
        let headers = String::from_utf8_lossy(&raw[..split]).to_lowercase();
        let status = headers
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(broken)?;
        let mut body = raw[split + 4..].to_vec();
        if headers.contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request("GET", path, token, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request("POST", path, token, Some(body.to_string().as_bytes()))
    }

    /// Registers an agency and a seal for it; returns (agency token, seal kid).
    pub fn agency_with_seal(&self, uscc: &str, seal_id: &str) -> (String, String) {
        self.agency_with_scope(uscc, seal_id, &[])
    }

    /// Registers an agency and a seal that may ask for certificates of `share_types`; returns
    /// (agency token, seal kid).
    pub fn agency_with_scope(
        &self,
        uscc: &str,
        seal_id: &str,
        share_types: &[&str],
    ) -> (String, String) {
        let agency = self.post(
            "/v1/admin/agencies",
            Some(&self.operator),
            &serde_json::json!({"uscc": uscc, "name": format!("机构{seal_id}")}),
        );
        assert_eq!(agency.status, 201, "{}", agency.text());
        let seal = self.post(
            "/v1/admin/seals",
            Some(&self.operator),
            &serde_json::json!({
                "agency_uscc": uscc, "seal_id": seal_id, "seal_type": "approval",
                "name": "行政审批专用章", "valid_until": 2_000_000_000u64,
                "picture": "cG5n", "media_type": "image/png", "share_types": share_types,
            }),
        );
        assert_eq!(seal.status, 201, "{}", seal.text());
        assert_eq!(seal.json()["share_types"], serde_json::json!(share_types));
        (
            agency.json()["token"].as_str().unwrap().to_owned(),
            seal.json()["kid"].as_str().unwrap().to_owned(),
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 4 + size..];
    }
}

/// Now, in whole seconds.
/// Runs `tongban-node <args> --dir <dir>`, which must succeed; returns its standard output.
fn command_ok(args: &[&str], dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn now() -> tongban_core::values::Time {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    tongban_core::values::Time::new(secs).unwrap()
}

/// An issuance request body.
pub fn certificate(seal: &str, serial: &str) -> Value {
    serde_json::json!({
        "seal": seal, "type_code": TYPE_CODE, "serial": serial, "type_name": "营业执照",
        "level": "A",
        "holder": {"name": "阜阳市通办示范科技有限公司", "id_type": "USCC", "id_number": HOLDER_USCC},
        "licence": {"capital": 1000000, "scope": "软件开发"}
    })
}
