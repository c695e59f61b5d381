//! Choosing and connecting a backend: one setting (`embedded`, `zookeeper`, `etcd`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{Coordination, Error, Result};

/// Which coordination service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    ZooKeeper,
    Etcd,
}

impl Backend {
    /// Parses the config file's `backend` value.
    pub fn from_name(name: &str) -> Result<Backend> {
        match name {
            "embedded" => Ok(Backend::Embedded),
            "zookeeper" => Ok(Backend::ZooKeeper),
            "etcd" => Ok(Backend::Etcd),
            other => Err(Error::Config(format!(
                "backend {other:?} is not one of \"embedded\", \"zookeeper\", \"etcd\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::ZooKeeper => "zookeeper",
            Backend::Etcd => "etcd",
        }
    }
}

/// How to reach a backend, and the session's parameters.
#[derive(Debug, Clone)]
pub struct CoordinationConfig {
    pub backend: Backend,
    /// `host:port` of the servers (ignored by `embedded`).
    pub endpoints: Vec<String>,
    /// Chroot (ZooKeeper) / key prefix (etcd) / namespace (embedded): an absolute path.
    pub root: String,
    /// Session TTL: ephemeral keys outlive a lost connection this long.
    pub session_timeout: Duration,
    /// How long connecting may take before [`Error::Unreachable`].
    pub connect_timeout: Duration,
    /// Where `embedded` persists its state.
    pub data_dir: Option<PathBuf>,
}

impl CoordinationConfig {
    /// Defaults as Kafka's ZooKeeper client had them: 18 s sessions, 18 s to connect.
    pub fn new(backend: Backend) -> CoordinationConfig {
        CoordinationConfig {
            backend,
            endpoints: Vec::new(),
            root: "/sluice".to_owned(),
            session_timeout: Duration::from_secs(18),
            connect_timeout: Duration::from_secs(18),
            data_dir: None,
        }
    }

    /// Checks what can be checked without connecting.
    pub fn validate(&self) -> Result<()> {
        crate::keys::validate(&self.root)
            .map_err(|_| Error::Config(format!("root {:?} is not an absolute path", self.root)))?;
        match self.backend {
            Backend::Embedded if self.data_dir.is_none() => Err(Error::Config(
                "the embedded backend needs a data directory".into(),
            )),
            Backend::ZooKeeper | Backend::Etcd if self.endpoints.is_empty() => {
                Err(Error::Config(format!(
                    "the {} backend needs at least one endpoint",
                    self.backend.name()
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Connects a client with its own session. For `embedded` this opens the store under
/// `data_dir` (one store per directory per process: to share one store between several
/// clients in a process, open an [`crate::embedded::EmbeddedStore`] and call its
/// `connect`).
pub async fn connect(config: &CoordinationConfig) -> Result<Arc<dyn Coordination>> {
    config.validate()?;
    match config.backend {
        Backend::Embedded => {
            let dir = config
                .data_dir
                .clone()
                .ok_or_else(|| Error::Config("no data directory".into()))?;
            let store = crate::embedded::EmbeddedStore::open(&dir)?;
            Ok(Arc::new(
                store.connect(&config.root, config.session_timeout)?,
            ))
        }
        Backend::ZooKeeper => Ok(Arc::new(crate::zookeeper::ZkClient::connect(config).await?)),
        Backend::Etcd => Ok(Arc::new(crate::etcd::EtcdClient::connect(config).await?)),
    }
}
