//! The data directory's health ([`LogDirHealth`]), shared by the replica manager and every
//! replica of the broker.
//!
//! Kafka's rule (`LogDirFailureChannel`): an I/O error in a log directory takes the whole
//! directory offline, because a disk that fails one write cannot be trusted with the next;
//! every replica in it stops serving (KAFKA_STORAGE_ERROR) until the broker is restarted
//! with the directory repaired. Sluice keeps one data directory per broker, so the broker's
//! partitions all go offline together — but the process stays up (Kafka halts when its
//! last directory fails): the broker withdraws its registration so that the controller
//! moves leadership to other replicas, and keeps answering the network.
//!
//! One exception, on purpose: a full disk (`ENOSPC`, `EDQUOT`) is not a failing disk.
//! The append that hit it is refused and truncated away (the log engine does that), and
//! writes resume once space is freed, without a restart.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::log::LogError;
use crate::Error;

/// Why and where the data directory went offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirFailure {
    /// The data directory.
    pub dir: PathBuf,
    /// The error that took it offline, with the file it concerned.
    pub reason: String,
}

/// Whether the data directory is online; see the module documentation. Cheap to clone
/// (all clones share one state).
#[derive(Debug, Clone)]
pub struct LogDirHealth {
    dir: PathBuf,
    failure: Arc<OnceLock<LogDirFailure>>,
    offline_tx: watch::Sender<bool>,
}

impl LogDirHealth {
    /// The health of `dir`, online.
    pub fn new(dir: impl Into<PathBuf>) -> LogDirHealth {
        LogDirHealth {
            dir: dir.into(),
            failure: Arc::new(OnceLock::new()),
            offline_tx: watch::Sender::new(false),
        }
    }

    /// The failure that took the directory offline, if it is.
    pub fn failure(&self) -> Option<&LogDirFailure> {
        self.failure.get()
    }

    /// Whether the directory is offline.
    pub fn is_offline(&self) -> bool {
        self.failure.get().is_some()
    }

    /// `Err(Error::LogDirOffline)` if the directory is offline.
    pub fn check(&self) -> crate::Result<()> {
        match self.failure.get() {
            None => Ok(()),
            Some(f) => Err(Error::LogDirOffline {
                dir: f.dir.clone(),
                reason: f.reason.clone(),
            }),
        }
    }

    /// Takes the directory offline if `error` says that it failed (an I/O error other than
    /// a full disk). The first failure is logged, once, at ERROR; returns whether `error`
    /// was such a failure.
    pub fn observe(&self, error: &Error) -> bool {
        let Error::Log(LogError::Io { source, .. }) = error else {
            return false;
        };
        if !is_dir_failure(source) {
            return false;
        }
        self.fail(error.to_string());
        true
    }

    /// Takes the directory offline for `reason` (idempotent: the first reason stays).
    pub fn fail(&self, reason: String) {
        let failure = LogDirFailure {
            dir: self.dir.clone(),
            reason,
        };
        if self.failure.set(failure).is_ok() {
            tracing::error!(
                dir = %self.dir.display(),
                reason = %self.failure.get().map_or("", |f| f.reason.as_str()),
                "log directory is offline: every partition in it stops serving \
                 (KAFKA_STORAGE_ERROR) and this broker gives up its leaderships; \
                 repair the directory and restart the broker"
            );
            self.offline_tx.send_replace(true);
        }
    }

    /// A receiver that sees `true` once the directory is offline.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.offline_tx.subscribe()
    }

    /// The directory this is the health of.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether an I/O error means the disk or directory failed (rather than filled up).
pub fn is_dir_failure(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) && !matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error(source: io::Error) -> Error {
        Error::Log(LogError::Io {
            op: "write",
            path: PathBuf::from("/data/t-0/00000000000000000000.log"),
            source,
        })
    }

    #[test]
    fn a_full_disk_is_not_a_failure_but_other_io_errors_are() {
        let health = LogDirHealth::new("/data");
        assert!(!health.observe(&io_error(io::Error::from_raw_os_error(libc::ENOSPC))));
        assert!(!health.observe(&io_error(io::Error::from_raw_os_error(libc::EDQUOT))));
        assert!(!health.observe(&Error::Log(LogError::CorruptBatch("x".into()))));
        assert!(health.check().is_ok());
        let mut offline = health.subscribe();
        assert!(health.observe(&io_error(io::Error::from_raw_os_error(libc::EIO))));
        assert!(health.is_offline());
        assert!(*offline.borrow_and_update());
        let Err(Error::LogDirOffline { dir, reason }) = health.clone().check() else {
            panic!("not offline");
        };
        assert_eq!(dir, PathBuf::from("/data"));
        assert!(reason.contains("00000000000000000000.log"), "{reason}");
        // The first reason stays.
        health.fail("later".into());
        assert!(health.failure().is_some_and(|f| f.reason.contains(".log")));
    }
}
