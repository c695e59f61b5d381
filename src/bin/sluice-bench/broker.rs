//! The broker under test, as its own process: the release `sluice` binary beside this one,
//! started from a config of the harness's own on a free loopback port.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Fail;

/// A `sluice` process (or the null broker) on a free port; killed on drop.
pub(crate) struct Process {
    child: Child,
    pub(crate) addr: String,
    log: PathBuf,
}

pub(crate) fn free_port() -> Result<u16, Fail> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The coordination section of a broker's config.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Embedded,
    Etcd(String),
}

impl Process {
    /// A Sluice broker with its data under `dir/data`. `extra` are `[config]` lines.
    pub(crate) fn sluice(
        dir: &Path,
        backend: &Backend,
        extra: &[(&str, &str)],
    ) -> Result<Process, Fail> {
        fs::create_dir_all(dir)?;
        let port = free_port()?;
        let data = dir.join("data");
        let coordination = match backend {
            Backend::Embedded => "backend = \"embedded\"\nroot = \"/sluice\"\n".to_owned(),
            Backend::Etcd(endpoint) => format!(
                "backend = \"etcd\"\nendpoints = [\"{endpoint}\"]\nroot = \"/sluice-bench-{port}\"\n"
            ),
        };
        let mut config = String::new();
        for (k, v) in [
            ("num.partitions", "1"),
            ("default.replication.factor", "1"),
            ("min.insync.replicas", "1"),
            ("auto.create.topics.enable", "false"),
            ("offsets.topic.replication.factor", "1"),
            ("group.initial.rebalance.delay.ms", "0"),
            ("log.segment.bytes", "1073741824"),
        ]
        .iter()
        .chain(extra)
        {
            config.push_str(&format!("\"{k}\" = {v}\n"));
        }
        let text = format!(
            "broker_id = 1\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nlog_level = \"warn\"\n\n\
             [coordination]\n{coordination}\n[config]\n{config}",
            data.display()
        );
        fs::write(dir.join("broker.toml"), text)?;
        Process::spawn_sluice(dir, port)
    }

    /// `sluice --config DIR/broker.toml`, listening on `port`.
    fn spawn_sluice(dir: &Path, port: u16) -> Result<Process, Fail> {
        let config = dir.join("broker.toml").display().to_string();
        Process::spawn(sibling("sluice")?, &["--config".into(), config], dir, port)
    }

    /// The same broker again, on the same config and data (after [`Process::stop`]).
    pub(crate) fn restart(dir: &Path) -> Result<(Process, Duration), Fail> {
        let path = dir.join("broker.toml");
        let text = fs::read_to_string(&path)?;
        let port: u16 = text
            .lines()
            .find_map(|l| l.strip_prefix("listen = \"127.0.0.1:"))
            .and_then(|rest| rest.trim_end_matches('"').parse().ok())
            .ok_or_else(|| Fail::msg(format!("no listen port in {}", path.display())))?;
        let started = Instant::now();
        let p = Process::spawn_sluice(dir, port)?;
        Ok((p, started.elapsed()))
    }

    /// The null broker (`sluice-bench null-broker`).
    pub(crate) fn null(dir: &Path) -> Result<Process, Fail> {
        fs::create_dir_all(dir)?;
        let port = free_port()?;
        let exe = std::env::current_exe()?;
        Process::spawn(
            exe,
            &["null-broker".into(), format!("127.0.0.1:{port}")],
            dir,
            port,
        )
    }

    fn spawn(exe: PathBuf, args: &[String], dir: &Path, port: u16) -> Result<Process, Fail> {
        let log = dir.join(format!(
            "{}.log",
            exe.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("process")
        ));
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = Command::new(&exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| Fail::msg(format!("cannot start {}: {e}", exe.display())))?;
        let mut p = Process {
            child,
            addr: format!("127.0.0.1:{port}"),
            log,
        };
        p.wait_listening()?;
        Ok(p)
    }

    fn wait_listening(&mut self) -> Result<(), Fail> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(Fail::msg(format!(
                    "the process exited with {status} before listening; see {}",
                    self.log.display()
                )));
            }
            if TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Fail::msg(format!(
                    "nothing listens on {} after 120 s",
                    self.addr
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size, bytes.
    pub(crate) fn rss(&self) -> Result<u64, Fail> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| Fail::msg("no VmRSS"))
    }

    /// User + system CPU time the process used so far.
    pub(crate) fn cpu(&self) -> Result<Duration, Fail> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the command name (which may hold spaces) — utime and stime are the
        // 14th and 15th fields of the whole line.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // utime = field 14 → index 11 after ") state"; stime → 12.
        let total = ticks(11) + ticks(12);
        let hz = 100; // sysconf(_SC_CLK_TCK) is 100 on Linux.
        Ok(Duration::from_millis(total * 1000 / hz))
    }

    /// SIGTERM, then waits for a clean exit.
    pub(crate) fn stop(mut self) -> Result<(), Fail> {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(Fail::msg(format!(
                        "the broker exited with {status}; see {}",
                        self.log.display()
                    )))
                };
            }
            if Instant::now() > deadline {
                return Err(Fail::msg("the broker did not stop within 60 s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary of this build, beside the harness's own.
pub(crate) fn sibling(name: &str) -> Result<PathBuf, Fail> {
    let p = std::env::current_exe()?.with_file_name(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(Fail::msg(format!(
            "{} is missing: build it with `cargo build --release --features bench --bins`",
            p.display()
        )))
    }
}
