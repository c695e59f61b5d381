//! Real Kafka clients against a real `sluice` process: confluent-kafka (librdkafka 2.16),
//! kafka-python 2.x and 3.x, and kcat. Each test starts its own broker from a temporary config
//! (embedded coordination, data in a tempdir, a free loopback port), drives the scripts in
//! `tests/clients/` (which print JSON lines and exit non-zero on any failure), and stops the
//! broker with SIGTERM, checking it exits 0.
//!
//! Needs `make deps` (kcat) and `make venv` (`.venv`, `.venv-kp3`); without them the tests fail
//! saying so, rather than pass without testing anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a broker may take from spawn to answering ApiVersions.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of a venv made by `make venv`; fails the test when it is missing.
fn python(venv: &str) -> PathBuf {
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

fn script(name: &str) -> PathBuf {
    root().join("tests").join("clients").join(name)
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
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Broker {
    fn start() -> Broker {
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

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        tail(&fs::read_to_string(&self.log).unwrap_or_default(), 40)
    }

    /// Starts the process (again, on the same config and data) and waits until it answers.
    fn spawn(&mut self) {
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
    fn stop(&mut self) {
        let mut child = self.child.take().expect("broker not running");
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
        let status = wait_deadline(&mut child, STOP_TIMEOUT);
        match status {
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

    /// SIGKILL (`kill -9`): no chance to flush or close anything.
    fn kill9(&mut self) {
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

/// A raw ApiVersions v0 request/response on a fresh connection.
fn api_versions(addr: SocketAddr) -> Result<(), String> {
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

/// Runs a command to completion with a deadline (killed past it), feeding `stdin`.
fn run(cmd: &mut Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Output {
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

fn reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// The raw value of `"name": value` in one JSON line printed by our scripts (flat keys, no
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

/// Asserts a script succeeded: exit 0 and a final `result` line with `"ok": true`; returns it.
fn assert_ok<'a>(what: &str, o: &'a Output) -> &'a str {
    let result = event(&o.stdout, "result");
    match result {
        Some(line) if o.status.success() && json_field(line, "ok") == Some("true") => line,
        _ => panic!("{what} failed\n{}", o.describe()),
    }
}

fn confluent(py: &Path, args: &[&str], timeout: Duration) -> Output {
    run(
        Command::new(py)
            .arg(script("confluent_roundtrip.py"))
            .args(args),
        None,
        timeout,
    )
}

/// One confluent-kafka round trip; returns the `result` line.
fn confluent_roundtrip(
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

/// 20,000 records over the 15 cells of acks {0, 1, all} x five codecs: one test per acks value.
const MATRIX_RECORDS_PER_CELL: u64 = 1334;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn confluent_matrix_row(acks: &str) {
    let mut b = Broker::start();
    for codec in CODECS {
        let topic = format!(
            "confluent-acks{}-{codec}",
            if acks == "all" { "all" } else { acks }
        );
        confluent_roundtrip(&b, &topic, MATRIX_RECORDS_PER_CELL, acks, codec);
    }
    b.stop();
}

#[test]
fn confluent_kafka_acks_0_every_codec() {
    confluent_matrix_row("0");
}

#[test]
fn confluent_kafka_acks_1_every_codec() {
    confluent_matrix_row("1");
}

#[test]
fn confluent_kafka_acks_all_every_codec() {
    confluent_matrix_row("all");
}

#[test]
fn confluent_kafka_100k_records_acks_all() {
    let mut b = Broker::start();
    confluent_roundtrip(&b, "confluent-100k", 100_000, "all", "none");
    b.stop();
}

fn kafka_python(venv: &str, major: &str) {
    let py = python(venv);
    let mut b = Broker::start();
    let addr = b.addr();
    for codec in ["none", "gzip"] {
        let topic = format!("kafka-python{major}-{codec}");
        let o = run(
            Command::new(&py)
                .arg(script("kafka_python_roundtrip.py"))
                .args([
                    "--bootstrap",
                    &addr,
                    "--topic",
                    &topic,
                    "--records",
                    "2000",
                    "--acks",
                    "all",
                    "--compression",
                    codec,
                    "--timeout",
                    "120",
                ]),
            None,
            Duration::from_secs(300),
        );
        let line = assert_ok(&format!("kafka-python {major}.x round trip ({codec})"), &o);
        assert_eq!(json_u64(line, "records"), Some(2000), "{}", o.describe());
        let version = json_field(line, "kafka_python").unwrap_or("");
        assert!(
            version.starts_with(&format!("{major}.")),
            "ran kafka-python {version}, wanted {major}.x"
        );
        let cluster = event(&o.stdout, "describe_cluster")
            .unwrap_or_else(|| panic!("no describe_cluster\n{}", o.describe()));
        assert!(
            cluster.contains(&format!("\"port\": {}", b.port)),
            "describe_cluster: {cluster}"
        );
    }
    b.stop();
}

#[test]
fn kafka_python_2x_round_trip() {
    kafka_python(".venv", "2");
}

#[test]
fn kafka_python_3x_round_trip() {
    kafka_python(".venv-kp3", "3");
}

#[test]
fn kcat_list_produce_consume() {
    let kcat = kcat();
    let mut b = Broker::start();
    let addr = b.addr();
    let t = Duration::from_secs(60);

    let o = run(
        Command::new(kcat).args(["-L", "-b", &addr, "-m", "10"]),
        None,
        t,
    );
    assert!(o.status.success(), "kcat -L\n{}", o.describe());
    assert!(
        o.stdout
            .contains(&format!("broker 1 at 127.0.0.1:{}", b.port)),
        "kcat -L does not list broker 1 at {addr}\n{}",
        o.describe()
    );

    // -P: 100 keyed records with a header into an auto-created topic.
    let topic = "kcat-topic";
    let input: String = (0..100).map(|i| format!("key{i}:value-{i}\n")).collect();
    let o = run(
        Command::new(kcat).args([
            "-P",
            "-b",
            &addr,
            "-t",
            topic,
            "-p",
            "0",
            "-K",
            ":",
            "-H",
            "source=kcat",
            "-X",
            "acks=all",
        ]),
        Some(input.into_bytes()),
        t,
    );
    assert!(o.status.success(), "kcat -P\n{}", o.describe());
    assert!(
        !o.stderr.contains("ERROR"),
        "kcat -P reported errors\n{}",
        o.describe()
    );

    let o = run(
        Command::new(kcat).args(["-L", "-b", &addr, "-t", topic, "-m", "10"]),
        None,
        t,
    );
    assert!(
        o.status.success()
            && o.stdout
                .contains(&format!("topic \"{topic}\" with 1 partitions")),
        "kcat -L -t {topic}\n{}",
        o.describe()
    );

    // -C -e: read it all back, with offsets, keys, values and headers.
    let o = run(
        Command::new(kcat).args([
            "-C",
            "-b",
            &addr,
            "-t",
            topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-m",
            "10",
            "-f",
            "%p|%o|%k|%s|%h\\n",
        ]),
        None,
        t,
    );
    assert!(o.status.success(), "kcat -C\n{}", o.describe());
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        100,
        "kcat -C read {} records, wanted 100\n{}",
        lines.len(),
        o.describe()
    );
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            format!("0|{i}|key{i}|value-{i}|source=kcat"),
            "record {i}"
        );
    }
    b.stop();
}

#[test]
fn restart_after_sigterm_keeps_every_record() {
    let py = python(".venv");
    let mut b = Broker::start();
    let addr = b.addr();
    let acked = b.dir.path().join("acked.jsonl");
    let acked_s = acked.to_str().expect("utf-8 path").to_string();
    let t = Duration::from_secs(300);
    let o = confluent(
        &py,
        &[
            "--mode",
            "produce",
            "--bootstrap",
            &addr,
            "--topic",
            "restart",
            "--records",
            "10000",
            "--acks",
            "all",
            "--compression",
            "lz4",
            "--acked-file",
            &acked_s,
        ],
        t,
    );
    let line = assert_ok("produce before restart", &o);
    assert_eq!(json_u64(line, "acked"), Some(10_000), "{}", o.describe());
    for round in 1..=2 {
        b.stop();
        b.spawn();
        let o = confluent(
            &py,
            &[
                "--mode",
                "verify",
                "--bootstrap",
                &addr,
                "--topic",
                "restart",
                "--acked-file",
                &acked_s,
                "--exact",
            ],
            t,
        );
        let line = assert_ok(&format!("verify after restart {round}"), &o);
        assert_eq!(json_u64(line, "records"), Some(10_000), "{}", o.describe());
    }
    b.stop();
}

fn count_lines(p: &Path) -> usize {
    let mut s = String::new();
    if let Ok(mut f) = File::open(p) {
        let _ = f.read_to_string(&mut s);
    }
    s.matches('\n').count().saturating_sub(1) // the first line is the header
}

#[test]
fn kill_9_mid_stream_keeps_every_acknowledged_record() {
    let py = python(".venv");
    let mut b = Broker::start();
    let addr = b.addr();
    let acked = b.dir.path().join("acked.jsonl");
    let acked_s = acked.to_str().expect("utf-8 path").to_string();
    // 200,000 records at 20,000/s: the broker is killed after at least 20,000 acknowledgements,
    // seconds before the producer would be done.
    let mut producer = Command::new(&py)
        .arg(script("confluent_roundtrip.py"))
        .args([
            "--mode",
            "produce",
            "--bootstrap",
            &addr,
            "--topic",
            "crash",
            "--records",
            "200000",
            "--rate",
            "20000",
            "--acks",
            "all",
            "--acked-file",
            &acked_s,
            "--stop-on-failure",
            "--message-timeout-ms",
            "5000",
            "--timeout",
            "120",
        ])
        .current_dir(root())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn producer");
    let out = reader(producer.stdout.take().expect("stdout"));
    let err = reader(producer.stderr.take().expect("stderr"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if count_lines(&acked) >= 20_000 {
            break;
        }
        if let Some(s) = producer.try_wait().expect("try_wait") {
            panic!(
                "the producer exited ({s}) before 20,000 acknowledgements\n--- stdout ---\n{}\n--- stderr ---\n{}",
                tail(&out.join().expect("join"), 30),
                tail(&err.join().expect("join"), 30)
            );
        }
        if Instant::now() >= deadline {
            let _ = producer.kill();
            panic!(
                "fewer than 20,000 acknowledgements within 120 s ({} so far)",
                count_lines(&acked)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    b.kill9();
    // The producer notices (message.timeout.ms = 5 s), writes out what was acknowledged, exits 3.
    let status = wait_deadline(&mut producer, Duration::from_secs(60));
    if status.is_none() {
        let _ = producer.kill();
        let _ = producer.wait();
    }
    let o = Output {
        status: status.unwrap_or_else(|| producer.wait().expect("wait")),
        stdout: out.join().expect("join"),
        stderr: err.join().expect("join"),
    };
    assert_eq!(
        o.status.code(),
        Some(3),
        "the producer should stop on the first failed delivery after kill -9 (exit 3)\n{}",
        o.describe()
    );
    let acked_n = count_lines(&acked);
    assert!(
        (20_000..200_000).contains(&acked_n),
        "{acked_n} acknowledged: not mid-stream"
    );

    b.spawn();
    let o = confluent(
        &py,
        &[
            "--mode",
            "verify",
            "--bootstrap",
            &addr,
            "--topic",
            "crash",
            "--acked-file",
            &acked_s,
        ],
        Duration::from_secs(300),
    );
    let line = assert_ok("verify after kill -9 and restart", &o);
    assert_eq!(
        json_u64(line, "acked"),
        Some(acked_n as u64),
        "{}",
        o.describe()
    );
    eprintln!("kill -9: {line}");
    b.stop();
}
