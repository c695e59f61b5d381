//! kafkajs 2.2.4 (Node.js) against a real `sluice` process: `tests/clients/js/roundtrip.js`
//! creates a topic with the admin client, produces keyed records with headers (acks=-1), checks
//! ListOffsets, and reads everything back with kafkajs's own Fetch request and decoder. Then kcat
//! reads the topic independently and the test checks every record again.
//!
//! kafkajs has no `assign()`: its public consumer needs consumer groups (FindCoordinator,
//! JoinGroup, ...), which Sluice does not implement yet. So the script reads through kafkajs's
//! internal cluster/broker objects (the ones its consumer is built on), and only *probes* the
//! group consumer, reporting what happened without failing on it.
//!
//! Needs `node` and `make node_modules` (run by `make test`; installs the pinned kafkajs from
//! `tests/clients/js/package-lock.json`), and kcat (`make deps`); without them the test fails
//! saying so, rather than pass without testing anything.
//!
//! The broker harness is a trimmed copy of the one in `tests/clients.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a broker may take from spawn to answering ApiVersions.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one client command may run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn js_dir() -> PathBuf {
    root().join("tests").join("clients").join("js")
}

/// `node` on PATH with kafkajs installed under `tests/clients/js`; fails the test otherwise.
fn node() -> &'static str {
    let ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "node is not installed (Node.js >= 14 is needed for kafkajs)"
    );
    let pkg = js_dir()
        .join("node_modules")
        .join("kafkajs")
        .join("package.json");
    let text = fs::read_to_string(&pkg).unwrap_or_default();
    assert!(
        text.contains("\"version\": \"2.2.4\""),
        "{} is missing or not kafkajs 2.2.4: run `make node_modules` (npm ci from \
         tests/clients/js/package-lock.json)",
        pkg.display()
    );
    "node"
}

/// kcat on PATH; fails the test when it is missing.
fn kcat() -> &'static str {
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

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One broker process with its own config and data dir; killed on drop.
struct Broker {
    dir: TempDir,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("sluice-kafkajs-")
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
             \n\
             [coordination]\n\
             backend = \"embedded\"\n\
             root = \"/sluice\"\n\
             \n\
             [config]\n\
             \"num.partitions\" = 1\n\
             \"default.replication.factor\" = 1\n\
             \"min.insync.replicas\" = 1\n\
             \"auto.create.topics.enable\" = true\n",
            data = data.display()
        );
        fs::write(&config, text).expect("write config");
        let log = dir.path().join("broker.log");
        let out = fs::File::create(&log).expect("create broker log");
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone log"))
            .stderr(out)
            .spawn()
            .expect("spawn sluice");
        let mut b = Broker {
            dir,
            port,
            log,
            child: Some(child),
        };
        b.wait_ready();
        b
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        tail(&fs::read_to_string(&self.log).unwrap_or_default(), 40)
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
                    "the broker did not start: it exited with {status} before serving on {addr}.\n\
                     --- broker log (tail) ---\n{}",
                    self.log_tail()
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
    fn stop(&mut self) {
        let mut child = self.child.take().expect("broker not running");
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
        match wait_deadline(&mut child, STOP_TIMEOUT) {
            Some(s) => assert!(
                s.success(),
                "the broker exited with {s} after SIGTERM, not 0.\n--- broker log (tail) ---\n{}",
                self.log_tail()
            ),
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

fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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

/// A raw ApiVersions v0 request/response on a fresh connection; Ok when it lists ApiVersions.
fn api_versions(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let client_id = b"sluice-kafkajs-test";
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

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            self.status,
            tail(&self.stdout, 30),
            tail(&self.stderr, 30)
        )
    }
}

/// Runs a command to completion with a deadline (killed past it).
fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = reader(child.stdout.take().expect("stdout"));
    let err = reader(child.stderr.take().expect("stderr"));
    let Some(status) = wait_deadline(&mut child, timeout) else {
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
    };
    Output {
        status,
        stdout: out.join().expect("join"),
        stderr: err.join().expect("join"),
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// The raw value of `"name": value` in one JSON line printed by the script (flat keys, no
/// escapes in the values we read).
fn json_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!("\"{name}\":");
    let start = line.find(&pat)? + pat.len();
    let rest = line[start..].trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return s.find('"').map(|e| &s[..e]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn json_u64(line: &str, name: &str) -> Option<u64> {
    json_field(line, name)?.parse().ok()
}

fn event<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines()
        .rev()
        .find(|l| json_field(l, "event") == Some(name))
}

/// Asserts the script succeeded: exit 0 and a final `result` line with `"ok":true`; returns it.
fn assert_ok<'a>(what: &str, o: &'a Output) -> &'a str {
    match event(&o.stdout, "result") {
        Some(line) if o.status.success() && json_field(line, "ok") == Some("true") => line,
        _ => panic!("{what} failed\n{}", o.describe()),
    }
}

fn roundtrip(
    broker: &Broker,
    topic: &str,
    records: u64,
    value_size: usize,
    extra: &[&str],
) -> Output {
    let o = run(
        Command::new(node())
            .arg(js_dir().join("roundtrip.js"))
            .args(["--bootstrap", &broker.addr(), "--topic", topic])
            .args(["--records", &records.to_string()])
            .args(["--value-size", &value_size.to_string()])
            .args(["--partitions", "3", "--keys", "97"])
            .args(extra),
        CLIENT_TIMEOUT,
    );
    let result = assert_ok("kafkajs roundtrip.js", &o);
    assert_eq!(
        json_u64(result, "produced"),
        Some(records),
        "{}",
        o.describe()
    );
    assert_eq!(
        json_u64(result, "consumed"),
        Some(records),
        "{}",
        o.describe()
    );
    o
}

/// Reads the whole topic with kcat (librdkafka, assign() per partition, no group) and checks
/// every record kafkajs produced: key, value, both headers and timestamp, once each, offsets
/// contiguous from 0 per partition, one partition per key.
fn verify_with_kcat(broker: &Broker, topic: &str, records: u64, value_size: usize, base_ts: u64) {
    let o = run(
        Command::new(kcat()).args([
            "-C",
            "-b",
            &broker.addr(),
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p|%o|%k|%T|%h|%s\\n",
        ]),
        CLIENT_TIMEOUT,
    );
    assert!(o.status.success(), "kcat -C\n{}", o.describe());
    let mut next_offset: BTreeMap<u32, u64> = BTreeMap::new();
    let mut key_partition: BTreeMap<String, u32> = BTreeMap::new();
    let mut seen = vec![false; records as usize];
    for line in o.stdout.lines() {
        let f: Vec<&str> = line.splitn(6, '|').collect();
        assert_eq!(f.len(), 6, "kcat line {line:?}");
        let partition: u32 = f[0].parse().expect("partition");
        let offset: u64 = f[1].parse().expect("offset");
        let (key, ts, headers, value) = (f[2], f[3], f[4], f[5]);
        let i: usize = value
            .strip_prefix("v-")
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("value {value:?} is not one of ours"));
        let at = format!("{topic}/{partition}@{offset} (record {i})");
        assert!(i < seen.len() && !seen[i], "{at}: out of range or twice");
        seen[i] = true;
        let want = *next_offset.get(&partition).unwrap_or(&0);
        assert_eq!(offset, want, "{at}: offsets not contiguous");
        next_offset.insert(partition, offset + 1);
        assert_eq!(key, format!("k{}", i % 97), "{at}: key");
        let head = format!("v-{i}-");
        let want_value = format!(
            "{head}{}",
            "x".repeat(value_size.saturating_sub(head.len()))
        );
        assert_eq!(value, want_value, "{at}: value");
        assert_eq!(headers, format!("idx={i},run={topic}"), "{at}: headers");
        assert_eq!(
            ts.parse::<u64>().ok(),
            Some(base_ts + i as u64),
            "{at}: timestamp"
        );
        if let Some(p) = key_partition.insert(key.to_string(), partition) {
            assert_eq!(p, partition, "{at}: key {key} in two partitions");
        }
    }
    let n = seen.iter().filter(|s| **s).count();
    assert_eq!(
        n as u64,
        records,
        "kcat read {n} of {records} records\n{}",
        o.describe()
    );
}

#[test]
fn kafkajs_produces_and_reads_back() {
    let mut b = Broker::start();
    let topic = "kafkajs-roundtrip";
    let (records, value_size) = (2000, 100);
    let o = roundtrip(&b, topic, records, value_size, &["--probe-group"]);
    // What the public (group) consumer did: not asserted, since Sluice has no groups yet.
    if let Some(line) = event(&o.stdout, "group_consumer") {
        eprintln!("kafkajs group consumer probe: {line}");
    }
    let base_ts = event(&o.stdout, "produced")
        .and_then(|l| json_u64(l, "base_ts"))
        .unwrap_or_else(|| panic!("no base_ts in the produced event\n{}", o.describe()));
    verify_with_kcat(&b, topic, records, value_size, base_ts);
    b.stop();
}

#[test]
fn kafkajs_large_values_in_small_batches() {
    let mut b = Broker::start();
    let topic = "kafkajs-large";
    let (records, value_size) = (300, 64 * 1024);
    let o = roundtrip(&b, topic, records, value_size, &["--batch", "7"]);
    let base_ts = event(&o.stdout, "produced")
        .and_then(|l| json_u64(l, "base_ts"))
        .unwrap_or_else(|| panic!("no base_ts in the produced event\n{}", o.describe()));
    verify_with_kcat(&b, topic, records, value_size, base_ts);
    b.stop();
}
