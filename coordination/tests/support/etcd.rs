//! A real etcd server (Debian's `/usr/bin/etcd`, 3.4) for the tests: one member on free
//! loopback ports, its data in a temp dir that outlives [`EtcdServer::kill9`] and
//! [`EtcdServer::restart`], its log in `etcd.log` beside the data (printed if it fails to
//! start). Dropping the server kills it.
// Test helpers: `pub` for the test crates that use them, which export nothing.
#![allow(unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, CompactionOptions};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// How long a start or restart may take before the test fails.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Tells members of concurrently running tests apart (`--name`).
static SERVERS: AtomicUsize = AtomicUsize::new(0);

pub struct EtcdServer {
    dir: TempDir,
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl EtcdServer {
    /// Starts a fresh single-member cluster and waits until it answers requests. Retries
    /// with new ports if another process took the chosen ones first.
    pub async fn start() -> EtcdServer {
        let dir = tempfile::Builder::new()
            .prefix("sluice-etcd-")
            .tempdir()
            .expect("temp dir");
        let name = format!(
            "sluice-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::SeqCst)
        );
        let mut server = EtcdServer {
            dir,
            name,
            client_port: 0,
            peer_port: 0,
            child: None,
        };
        for attempt in 0..3 {
            server.client_port = super::free_port();
            server.peer_port = super::free_port();
            server.spawn();
            if server.wait_until_serving().await {
                return server;
            }
            server.stop().await;
            eprintln!("etcd did not come up (attempt {attempt}); retrying on other ports");
        }
        panic!("etcd did not start; log:\n{}", server.log());
    }

    /// `127.0.0.1:<client port>`, as the client's `endpoints` take it.
    pub fn endpoint(&self) -> String {
        self.addr().to_string()
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    /// Kills the server with SIGKILL and waits until it is gone.
    pub async fn kill9(&mut self) {
        self.stop().await;
    }

    /// Starts the server again on the same ports and data dir; waits until it serves.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn();
        assert!(
            self.wait_until_serving().await,
            "etcd did not restart; log:\n{}",
            self.log()
        );
    }

    /// A plain `etcd-client` connected to the server, for setting up or inspecting state
    /// behind the backend's back.
    pub async fn raw_client(&self) -> Client {
        Client::connect([self.endpoint()], None)
            .await
            .expect("connect raw etcd client")
    }

    /// The store's current revision.
    pub async fn revision(&self) -> i64 {
        let mut client = self.raw_client().await;
        let resp = client.get("/", None).await.expect("read revision");
        resp.header().expect("response header").revision()
    }

    /// Compacts history up to `revision` (physically: returns once it is applied), so
    /// watches that resume below it are told the history is gone.
    pub async fn compact(&self, revision: i64) {
        let mut client = self.raw_client().await;
        client
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
            .expect("compact");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn spawn(&mut self) {
        let client_url = format!("http://127.0.0.1:{}", self.client_port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open etcd log");
        let child = Command::new("/usr/bin/etcd")
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
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
            .kill_on_drop(true)
            .spawn()
            .expect("spawn /usr/bin/etcd");
        self.child = Some(child);
    }

    /// Waits until the port is open and a real request succeeds; false if the process
    /// exits or the limit passes first.
    async fn wait_until_serving(&mut self) -> bool {
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("etcd exited during start: {status}");
                    return false;
                }
            }
            if tokio::net::TcpStream::connect(self.addr()).await.is_ok() && self.answers().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Whether a request succeeds, answered by this member: with ports picked by several
    /// tests at once, another test's server may hold the port this one failed to bind.
    async fn answers(&self) -> bool {
        let probe = async {
            let mut client = Client::connect([self.endpoint()], None).await.ok()?;
            let members = client.member_list().await.ok()?;
            Some(members.members().iter().any(|m| m.name() == self.name))
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Some(true))
        )
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
