//! What the real-broker integration tests share: a `sluice` process started from a temporary
//! config (embedded, ZooKeeper or etcd coordination), the real clients (confluent-kafka,
//! kafka-python, kcat) run with deadlines, the JSON lines their scripts print, and real
//! ZooKeeper and etcd servers for the broker to be coordinated through.
//!
//! Each test crate that says `mod support;` compiles all of it and uses part of it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod etcd;
/// The raw Kafka client of the protocol-level tests.
pub mod kafka;
/// confluent-kafka group members as processes.
pub mod member;
/// The coordination crate's own ZooKeeper server harness (it needs `super::free_port`).
#[path = "../../coordination/tests/support/zookeeper.rs"]
pub mod zookeeper;

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Tells the coordination roots of brokers in one test process apart.
static ROOTS: AtomicUsize = AtomicUsize::new(0);

/// A two-thread tokio runtime for tests that drive the native client.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// How a test broker is coordinated.
#[derive(Debug, Clone)]
pub enum Coordination {
    /// The embedded store, in the data dir.
    Embedded,
    /// A ZooKeeper server at `host:port`, under a chroot of its own.
    ZooKeeper(String),
    /// An etcd member at `host:port`, under a key prefix of its own.
    Etcd(String),
}

impl Coordination {
    /// The body of the config's `[coordination]` table.
    fn toml(&self) -> String {
        let (backend, endpoint) = match self {
            Coordination::Embedded => {
                return "backend = \"embedded\"\nroot = \"/sluice\"\n".to_owned();
            }
            Coordination::ZooKeeper(e) => ("zookeeper", e),
            Coordination::Etcd(e) => ("etcd", e),
        };
        // A root no other broker uses, so leftovers of another run or test cannot leak in.
        let root = format!(
            "/sluice-test-{}-{}",
            std::process::id(),
            ROOTS.fetch_add(1, Ordering::SeqCst)
        );
        // A short session: a broker that dies without closing its session is declared dead
        // (and its id free again) in seconds.
        format!(
            "backend = \"{backend}\"\n\
             endpoints = [\"{endpoint}\"]\n\
             root = \"{root}\"\n\
             session_timeout_ms = 6000\n\
             connect_timeout_ms = 20000\n"
        )
    }
}

/// How long a broker may take from spawn to answering ApiVersions.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of a venv made by `make venv`; fails the test when it is missing.
pub fn python(venv: &str) -> PathBuf {
    let p = root().join(venv).join("bin").join("python");
    let ok = Command::new(&p)
        .args(["-c", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} is missing or broken: run `make venv` (it installs the pinned real clients from \
         tests/clients/requirements*.txt)",
        p.display()
    );
    p
}

/// kcat on PATH; fails the test when it is missing.
pub fn kcat() -> &'static str {
    let ok = Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kcat is not installed: run `make deps`");
    "kcat"
}

pub fn script(name: &str) -> PathBuf {
    root().join("tests").join("clients").join(name)
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

pub fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The body of a test broker's `[config]` table: one partition, replication factor 1,
/// auto-creation on, an offsets topic of replication factor 1, no initial rebalance delay —
/// each replaced by `extra` when it names the same key.
fn config_table(extra: &[(&str, &str)]) -> String {
    let mut keys: Vec<(&str, &str)> = vec![
        ("num.partitions", "1"),
        ("default.replication.factor", "1"),
        ("min.insync.replicas", "1"),
        ("auto.create.topics.enable", "true"),
        // One broker: the offsets topic cannot have Kafka's default replication factor 3.
        ("offsets.topic.replication.factor", "1"),
        // Tests should not wait 3 s for the first rebalance of every group.
        ("group.initial.rebalance.delay.ms", "0"),
    ];
    for (k, v) in extra {
        match keys.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v,
            None => keys.push((k, v)),
        }
    }
    keys.iter()
        .map(|(k, v)| format!("\"{k}\" = {v}\n"))
        .collect()
}

/// One broker process with its own config and data dir; killed on drop.
pub struct Broker {
    pub dir: TempDir,
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Broker {
    /// A broker with embedded coordination.
    pub fn start() -> Broker {
        Broker::start_with(Coordination::Embedded)
    }

    /// A broker coordinated as `coordination` says.
    pub fn start_with(coordination: Coordination) -> Broker {
        Broker::start_with_config(coordination, &[])
    }

    /// A broker coordinated as `coordination` says, with `extra` broker keys in its
    /// `[config]` (Kafka's names; a key given here replaces the harness's default).
    pub fn start_with_config(coordination: Coordination, extra: &[(&str, &str)]) -> Broker {
        Broker::start_prepared(coordination, extra, |_| {})
    }

    /// As [`Broker::start_with_config`], with `prepare` called on the data directory's path
    /// (not created yet) before the broker starts — e.g. to mount a small file system there.
    pub fn start_prepared(
        coordination: Coordination,
        extra: &[(&str, &str)],
        prepare: impl FnOnce(&Path),
    ) -> Broker {
        Broker::start_custom(coordination, extra, "", prepare)
    }

    /// A broker that tells clients `advertised` (`host:port`, e.g. a proxy in front of it)
    /// instead of its listener.
    pub fn start_advertising(coordination: Coordination, advertised: &str) -> Broker {
        Broker::start_custom(
            coordination,
            &[],
            &format!("advertised = \"{advertised}\"\n"),
            |_| {},
        )
    }

    /// The general form: `top_level` is TOML inserted among the top-level settings.
    pub fn start_custom(
        coordination: Coordination,
        extra: &[(&str, &str)],
        top_level: &str,
        prepare: impl FnOnce(&Path),
    ) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("sluice-clients-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let data = dir.path().join("data");
        let config = dir.path().join("broker.toml");
        let text = format!(
            "broker_id = 1\n\
             listen = \"127.0.0.1:{port}\"\n\
             data_dir = \"{data}\"\n\
             log_level = \"info\"\n\
             {top_level}\
             \n\
             [coordination]\n\
             {coordination}\
             \n\
             [config]\n\
             {config}",
            data = data.display(),
            coordination = coordination.toml(),
            config = config_table(extra),
        );
        fs::write(&config, text).expect("write config");
        prepare(&data);
        let log = dir.path().join("broker.log");
        let mut b = Broker {
            dir,
            port,
            config,
            log,
            child: None,
            starts: 0,
        };
        b.spawn();
        b
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker running").id()
    }

    /// Everything the broker logged so far (every start).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        tail(&fs::read_to_string(&self.log).unwrap_or_default(), 40)
    }

    /// Starts the process (again, on the same config and data) and waits until it answers.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open broker log");
        writeln!(log, "===== start {} =====", self.starts).expect("write log");
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn sluice");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls until the port accepts and a raw ApiVersions v0 exchange succeeds.
    fn wait_ready(&mut self) {
        let addr: SocketAddr = self.addr().parse().expect("addr");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .expect("child")
                .try_wait()
                .expect("try_wait")
            {
                self.child = None;
                panic!(
                    "the broker did not start: it exited with {status} before serving on {addr} \
                     (start {n}).\n--- broker log (tail) ---\n{log}",
                    n = self.starts,
                    log = self.log_tail()
                );
            }
            let last_err = match api_versions(addr) {
                Ok(()) => return,
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "the broker did not start: no ApiVersions answer on {addr} within {START_TIMEOUT:?} \
                 (last error: {last_err}).\n--- broker log (tail) ---\n{}",
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits for the process and asserts it exited 0.
    pub fn stop(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "the broker exited with {status} after SIGTERM, not 0.\n--- broker log (tail) ---\n{}",
            self.log_tail()
        );
    }

    /// SIGTERM, then waits (panics if the process outlives [`STOP_TIMEOUT`]); its status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker not running");
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
        match wait_deadline(&mut child, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the broker did not exit within {STOP_TIMEOUT:?} of SIGTERM.\n--- broker log (tail) ---\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("try_wait").is_none())
    }

    /// SIGKILL (`kill -9`): no chance to flush or close anything.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker not running");
        child.kill().expect("kill -9");
        child.wait().expect("wait");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Still running here means a test failed mid-way: show why the broker may be involved.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if thread::panicking() {
                eprintln!(
                    "--- broker log {} (tail) ---\n{}",
                    self.dir.path().display(),
                    self.log_tail()
                );
            }
        }
    }
}

pub fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A raw ApiVersions v0 request/response on a fresh connection.
pub fn api_versions(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let client_id = b"sluice-clients-test";
    let corr: i32 = 0x5eed;
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    body.extend_from_slice(&0i16.to_be_bytes()); // v0
    body.extend_from_slice(&corr.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).map_err(|e| format!("write: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| format!("read size: {e}"))?;
    let len = i32::from_be_bytes(len);
    if !(10..=1 << 20).contains(&len) {
        return Err(format!("bad response size {len}"));
    }
    let mut resp = vec![0u8; len as usize];
    s.read_exact(&mut resp)
        .map_err(|e| format!("read body: {e}"))?;
    let got_corr = i32::from_be_bytes(resp[0..4].try_into().expect("4 bytes"));
    let err = i16::from_be_bytes(resp[4..6].try_into().expect("2 bytes"));
    let n = i32::from_be_bytes(resp[6..10].try_into().expect("4 bytes"));
    if got_corr != corr {
        return Err(format!("correlation id {got_corr}, sent {corr}"));
    }
    if err != 0 {
        return Err(format!("ApiVersions error code {err}"));
    }
    if n <= 0 || resp.len() < 10 + n as usize * 6 {
        return Err(format!(
            "ApiVersions lists {n} APIs in {} bytes",
            resp.len()
        ));
    }
    let lists_api_versions = (0..n as usize).any(|i| {
        let o = 10 + i * 6;
        i16::from_be_bytes([resp[o], resp[o + 1]]) == 18
    });
    if !lists_api_versions {
        return Err("ApiVersions response does not list ApiVersions".into());
    }
    Ok(())
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            self.status,
            tail(&self.stdout, 30),
            tail(&self.stderr, 30)
        )
    }
}

/// Runs a command to completion with a deadline (killed past it), feeding `stdin`.
pub fn run(cmd: &mut Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Output {
    let mut child = cmd
        .current_dir(root())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let feeder = stdin.map(|data| {
        let mut w = child.stdin.take().expect("stdin");
        thread::spawn(move || {
            let _ = w.write_all(&data);
        })
    });
    let out = reader(child.stdout.take().expect("stdout"));
    let err = reader(child.stderr.take().expect("stderr"));
    let status = match wait_deadline(&mut child, timeout) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let o = Output {
                status: child.wait().expect("wait"),
                stdout: out.join().expect("join"),
                stderr: err.join().expect("join"),
            };
            panic!(
                "{cmd:?} did not finish within {timeout:?}\n{}",
                o.describe()
            );
        }
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Output {
        status,
        stdout: out.join().expect("join"),
        stderr: err.join().expect("join"),
    }
}

pub fn reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// The raw value of `"name": value` in one JSON line printed by our scripts (flat keys, no
/// escapes in the values we read).
pub fn json_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!("\"{name}\":");
    let start = line.find(&pat)? + pat.len();
    let rest = line[start..].trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return s.find('"').map(|e| &s[..e]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

pub fn json_u64(line: &str, name: &str) -> Option<u64> {
    json_field(line, name)?.parse().ok()
}

pub fn event<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines()
        .rev()
        .find(|l| json_field(l, "event") == Some(name))
}

/// Asserts a script succeeded: exit 0 and a final `result` line with `"ok": true`; returns it.
pub fn assert_ok<'a>(what: &str, o: &'a Output) -> &'a str {
    let result = event(&o.stdout, "result");
    match result {
        Some(line) if o.status.success() && json_field(line, "ok") == Some("true") => line,
        _ => panic!("{what} failed\n{}", o.describe()),
    }
}

pub fn confluent(py: &Path, args: &[&str], timeout: Duration) -> Output {
    run(
        Command::new(py)
            .arg(script("confluent_roundtrip.py"))
            .args(args),
        None,
        timeout,
    )
}

/// One confluent-kafka round trip; returns the `result` line.
pub fn confluent_roundtrip(
    b: &Broker,
    topic: &str,
    records: u64,
    acks: &str,
    compression: &str,
) -> String {
    let py = python(".venv");
    let n = records.to_string();
    let addr = b.addr();
    let o = confluent(
        &py,
        &[
            "--bootstrap",
            &addr,
            "--topic",
            topic,
            "--records",
            &n,
            "--acks",
            acks,
            "--compression",
            compression,
            "--timeout",
            "180",
        ],
        Duration::from_secs(400),
    );
    let line = assert_ok(
        &format!("confluent-kafka round trip acks={acks} compression={compression}"),
        &o,
    );
    assert_eq!(json_u64(line, "records"), Some(records), "{}", o.describe());
    assert_eq!(
        json_u64(line, "partitions_used"),
        Some(3),
        "keyed records should use all 3 partitions\n{}",
        o.describe()
    );
    if let Some(p) = event(&o.stdout, "produced") {
        eprintln!("confluent acks={acks} compression={compression}: {p}");
    }
    if let Some(c) = event(&o.stdout, "consumed") {
        eprintln!("confluent acks={acks} compression={compression}: {c}");
    }
    line.to_string()
}

/// A real ZooKeeper server (the coordination crate's harness, which is async) with the
/// runtime it was started on; the server is killed on drop.
pub struct ZooKeeper {
    // Declared before the runtime: the server goes first.
    pub server: zookeeper::ZkServer,
    _runtime: tokio::runtime::Runtime,
}

impl ZooKeeper {
    /// Starts a standalone server on a free loopback port and waits until it serves.
    pub fn start() -> ZooKeeper {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let server = runtime.block_on(zookeeper::ZkServer::start());
        ZooKeeper {
            server,
            _runtime: runtime,
        }
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }
}
