//! A real etcd server (Debian's `/usr/bin/etcd`, 3.4) for the broker tests: one member on
//! free loopback ports, its data and log (`etcd.log`) in a temp dir. Like the coordination
//! crate's harness (`coordination/tests/support/etcd.rs`), but blocking and without
//! `etcd-client`: readiness is asked over etcd's JSON gateway (`/health`, then
//! `/v3/cluster/member/list` naming this member, since with ports picked by several tests at
//! once another test's server may hold a port this one failed to bind). Dropping the server
//! kills it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a start may take before the attempt is given up.
const START_LIMIT: Duration = Duration::from_secs(30);
/// Attempts with fresh ports.
const ATTEMPTS: usize = 3;

/// Tells members of concurrently running tests apart (`--name`).
static SERVERS: AtomicUsize = AtomicUsize::new(0);

/// One etcd member and its temp dir.
pub struct EtcdServer {
    // Declared before `dir`, so the process dies before its directory is removed.
    child: Option<Child>,
    dir: TempDir,
    name: String,
    client_port: u16,
}

impl EtcdServer {
    /// Starts a fresh single-member cluster and waits until it answers requests.
    pub fn start() -> EtcdServer {
        let dir = tempfile::Builder::new()
            .prefix("sluice-etcd-")
            .tempdir()
            .expect("temp dir");
        let name = format!(
            "sluice-broker-test-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::SeqCst)
        );
        let mut server = EtcdServer {
            child: None,
            dir,
            name,
            client_port: 0,
        };
        for attempt in 1..=ATTEMPTS {
            server.client_port = super::free_port();
            let peer_port = super::free_port();
            server.spawn(attempt, peer_port);
            if server.wait_until_serving() {
                return server;
            }
            server.stop();
            eprintln!("etcd did not come up (attempt {attempt}); retrying on other ports");
        }
        panic!(
            "etcd did not start after {ATTEMPTS} attempts; log:\n{}",
            server.log_tail()
        );
    }

    /// `127.0.0.1:<client port>`, as the broker's `endpoints` take it.
    pub fn endpoint(&self) -> String {
        self.addr().to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        super::tail(&log, 40)
    }

    fn spawn(&mut self, attempt: usize, peer_port: u16) {
        let client_url = format!("http://127.0.0.1:{}", self.client_port);
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("open etcd log");
        let child = Command::new("/usr/bin/etcd")
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            // A fresh data dir per attempt: a failed attempt may have left a member behind.
            .arg(self.dir.path().join(format!("data-{attempt}")))
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("{}={peer_url}", self.name))
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(&self.name)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn /usr/bin/etcd (is etcd installed?)");
        self.child = Some(child);
    }

    /// Waits until this member is healthy (it has a leader) and lists itself; false if the
    /// process exits or the limit passes first.
    fn wait_until_serving(&mut self) -> bool {
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("etcd exited during start: {status}");
                    return false;
                }
            }
            let ours = format!("\"name\":\"{}\"", self.name);
            let healthy = matches!(http(self.addr(), "GET", "/health", ""),
                Some(r) if r.contains("\"health\":\"true\""));
            if healthy
                && matches!(http(self.addr(), "POST", "/v3/cluster/member/list", "{}"),
                    Some(r) if r.contains(&ours))
            {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One HTTP/1.0 exchange (the server closes the connection after it); the whole response,
/// or `None` on any error.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    reply.starts_with("HTTP/1.").then_some(reply)
}
