//! Consumer-group members run by the tests as separate processes
//! (`tests/clients/confluent_groups.py member`), so that a test can close one or kill it
//! with -9, and the JSON-line helpers that read what they print. Shared by `groups.rs` and
//! `client_consumer.rs`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{json_field, python, reader, root, script, tail, wait_deadline, Broker};

/// How long a group may take to settle after a change.
pub const SETTLE: Duration = Duration::from_secs(60);

pub fn json_i64(line: &str, field: &str) -> Option<i64> {
    json_field(line, field)?.parse().ok()
}

/// The integers of a `"field": [1, 2]` list in a JSON line.
pub fn json_list(line: &str, field: &str) -> Option<Vec<i64>> {
    let pat = format!("\"{field}\": [");
    let start = line.find(&pat)? + pat.len();
    let end = start + line[start..].find(']')?;
    Some(
        line[start..end]
            .split(',')
            .filter(|x| !x.trim().is_empty())
            .map(|x| x.trim().parse().expect("an integer"))
            .collect(),
    )
}

/// One `confluent_groups.py member` process.
pub struct Member {
    pub name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    stdout: Option<thread::JoinHandle<()>>,
    stderr: Option<thread::JoinHandle<String>>,
    stderr_text: String,
}

impl Member {
    pub fn start(b: &Broker, name: &str, topic: &str, group: &str, extra: &[&str]) -> Member {
        let addr = b.addr();
        let mut child = Command::new(python(".venv"))
            .arg(script("confluent_groups.py"))
            .args([
                "member",
                "--bootstrap",
                &addr,
                "--topic",
                topic,
                "--group",
                group,
                "--name",
                name,
            ])
            .args(extra)
            .current_dir(root())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a member");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&lines);
        let stdout = thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let stderr = reader(child.stderr.take().expect("stderr"));
        Member {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            stdout: Some(stdout),
            stderr: Some(stderr),
            stderr_text: String::new(),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn events(&self, name: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| json_field(l, "event") == Some(name))
            .collect()
    }

    /// The partitions of its latest assignment event (None before the first).
    pub fn assignment(&self) -> Option<Vec<i64>> {
        let lines = self.lines.lock().unwrap();
        let last = lines
            .iter()
            .rev()
            .find(|l| json_field(l, "event") == Some("assignment"))?;
        json_list(last, "partitions")
    }

    /// (partition, offset) of every record it processed, in order.
    pub fn records(&self) -> Vec<(i64, i64)> {
        self.events("record")
            .iter()
            .map(|l| (json_i64(l, "p").unwrap(), json_i64(l, "o").unwrap()))
            .collect()
    }

    /// Its last successful commit per partition (the next offset to read).
    pub fn committed(&self) -> BTreeMap<i64, i64> {
        self.events("committed")
            .iter()
            .map(|l| (json_i64(l, "p").unwrap(), json_i64(l, "o").unwrap()))
            .collect()
    }

    pub fn send(&mut self, command: &str) {
        let w = self.stdin.as_mut().expect("stdin open");
        writeln!(w, "{command}").expect("write to a member's stdin");
        w.flush().unwrap();
    }

    /// "close": it commits what is pending, closes (LeaveGroup) and exits 0.
    pub fn close(&mut self) {
        if let Some(w) = self.stdin.as_mut() {
            let _ = writeln!(w, "close");
            let _ = w.flush();
        }
        let mut child = self.child.take().expect("running");
        let status = wait_deadline(&mut child, SETTLE);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.collect_output();
        assert!(
            status.is_some_and(|s| s.success())
                && self
                    .events("result")
                    .last()
                    .is_some_and(|l| json_field(l, "ok") == Some("true")),
            "member {} did not close cleanly ({status:?})\n{}",
            self.name,
            self.describe()
        );
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9");
        child.wait().unwrap();
        self.collect_output();
    }

    /// After the process exited: every line it printed is in `lines`, its stderr is kept.
    pub fn collect_output(&mut self) {
        drop(self.stdin.take());
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
        if let Some(h) = self.stderr.take() {
            self.stderr_text = h.join().unwrap_or_default();
        }
    }

    pub fn describe(&self) -> String {
        let lines = self.lines();
        let interesting: Vec<&String> = lines
            .iter()
            .filter(|l| {
                json_field(l, "event") != Some("record")
                    && json_field(l, "event") != Some("committed")
            })
            .collect();
        format!(
            "--- member {} events (no records) ---\n{}\n--- stderr (tail) ---\n{}",
            self.name,
            interesting
                .iter()
                .rev()
                .take(30)
                .rev()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            tail(&self.stderr_text, 20)
        )
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if thread::panicking() {
                self.collect_output();
                eprintln!("{}", self.describe());
            }
        }
    }
}

/// Asks every member to close, then waits for each (they leave concurrently).
pub fn close_all(members: &mut [Member]) {
    for m in members.iter_mut() {
        m.send("close");
    }
    for m in members.iter_mut() {
        m.close();
    }
}

pub fn describe_all(members: &[&Member]) -> String {
    members
        .iter()
        .map(|m| m.describe())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Polls `f` every 50 ms until it gives a value; fails after `timeout` with `diag()`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    diag: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}\n{}",
            diag()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The members' latest assignments when every member holds partitions and together they
/// hold each of `0..partitions` exactly once (disjoint and complete).
pub fn settled(members: &[&Member], partitions: i64) -> Option<Vec<Vec<i64>>> {
    let a: Vec<Vec<i64>> = members
        .iter()
        .map(|m| m.assignment())
        .collect::<Option<_>>()?;
    if a.iter().any(Vec::is_empty) {
        return None;
    }
    let mut all: Vec<i64> = a.concat();
    all.sort_unstable();
    (all == (0..partitions).collect::<Vec<_>>()).then_some(a)
}

pub fn wait_settled(what: &str, members: &[&Member], partitions: i64) -> Vec<Vec<i64>> {
    let a = wait_for(
        what,
        SETTLE,
        || settled(members, partitions),
        || describe_all(members),
    );
    eprintln!(
        "{what}: {}",
        members
            .iter()
            .zip(&a)
            .map(|(m, a)| format!("{} {a:?}", m.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    a
}
