//! A real standalone ZooKeeper server for the tests: Debian's ZooKeeper 3.8 jars run
//! directly by `java` (`ZooKeeperServerMain`, as `zkServer.sh` would start it, minus the
//! system-wide config and log directories), on a free loopback port, with its config,
//! data and log in a temp dir. The process is killed when the [`ZkServer`] is dropped.
// `pub` for the test crates that use this harness, which lint them as unreachable.
#![allow(unreachable_pub)]

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Debian's `zookeeper.jar` names its dependencies in its manifest's `Class-Path`;
/// slf4j-simple gives the server a logger (it writes to stderr, which goes to the log).
const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";
const MAIN: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
/// How long a JVM may take to serve; generous, since tests start servers in parallel.
const START_LIMIT: Duration = Duration::from_secs(60);
/// Attempts at a free port (another test may take the port between choosing and binding).
const PORT_ATTEMPTS: usize = 5;

/// One ZooKeeper server process and its temp dir.
pub struct ZkServer {
    // Declared before `dir`, so the process dies before its directory is removed.
    child: Option<Child>,
    dir: TempDir,
    port: u16,
}

impl ZkServer {
    /// Starts a server and waits until it serves requests.
    pub async fn start() -> ZkServer {
        let dir = tempfile::Builder::new()
            .prefix("sluice-zk-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(dir.path().join("data")).expect("data dir");
        for _ in 0..PORT_ATTEMPTS {
            let port = super::free_port();
            write_config(dir.path(), port);
            if let Some(child) = spawn(dir.path(), port).await {
                return ZkServer {
                    child: Some(child),
                    dir,
                    port,
                };
            }
        }
        panic!(
            "ZooKeeper did not start after {PORT_ATTEMPTS} attempts:\n{}",
            log_tail(dir.path())
        );
    }

    /// `127.0.0.1:<port>`, the client's connect string.
    pub fn endpoint(&self) -> String {
        self.addr().to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// SIGKILLs the server and waits for it to be gone.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("SIGKILL zookeeper");
            child.wait().await.expect("reap zookeeper");
        }
    }

    /// Starts the server again on the same port with the same data, and waits until it
    /// serves requests.
    pub async fn restart(&mut self) {
        self.kill9().await;
        let child = spawn(self.dir.path(), self.port).await;
        assert!(
            child.is_some(),
            "ZooKeeper did not restart on port {}:\n{}",
            self.port,
            log_tail(self.dir.path())
        );
        self.child = child;
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(self.dir.path())
    }
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("zookeeper.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Spawns the JVM on the config in `dir` and waits until it serves; `None` if it exited
/// first (the port was taken, most likely).
async fn spawn(dir: &Path, port: u16) -> Option<Child> {
    let log = File::options()
        .create(true)
        .append(true)
        .open(dir.join("zookeeper.log"))
        .expect("zookeeper log");
    let mut child = Command::new("java")
        .args([
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.net.preferIPv4Stack=true",
            "-cp",
            CLASSPATH,
            MAIN,
        ])
        .arg(dir.join("zoo.cfg"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn java (is a JRE installed?)");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if child.try_wait().expect("poll zookeeper").is_some() {
            return None;
        }
        if serving(addr, dir).await {
            return Some(child);
        }
        assert!(
            Instant::now() < deadline,
            "ZooKeeper not serving after {START_LIMIT:?}:\n{}",
            log_tail(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether our server serves: `conf` names our data dir (not some other test's server that
/// took the port first) and `srvr` answers (which, unlike `ruok`, it does only once the
/// server has loaded its data).
async fn serving(addr: SocketAddr, dir: &Path) -> bool {
    let ours = format!("dataDir={}", dir.join("data").display());
    matches!(four_letter_word(addr, b"conf").await, Some(reply) if reply.contains(&ours))
        && matches!(four_letter_word(addr, b"srvr").await, Some(reply) if reply.contains("Mode: standalone"))
}

async fn four_letter_word(addr: SocketAddr, word: &[u8]) -> Option<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(word).await.ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.ok()?;
        Some(reply)
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// `zoo.cfg` for a standalone server: short ticks so 1 s sessions are allowed, all
/// four-letter words, no admin HTTP server. `forceSync=no` skips fsync: the tests kill the
/// process, never the machine, so the page cache keeps what was written.
fn write_config(dir: &Path, port: u16) {
    let config = format!(
        "tickTime=500\n\
         initLimit=10\n\
         syncLimit=5\n\
         dataDir={data}\n\
         clientPort={port}\n\
         clientPortAddress=127.0.0.1\n\
         minSessionTimeout=1000\n\
         maxSessionTimeout=60000\n\
         maxClientCnxns=0\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=*\n\
         forceSync=no\n",
        data = dir.join("data").display(),
    );
    std::fs::write(dir.join("zoo.cfg"), config).expect("write zoo.cfg");
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // kill_on_drop would do it too; this makes it explicit and immediate.
            let _ = child.start_kill();
        }
    }
}
