//! The ZooKeeper backend: one [`ZkClient`] is one ZooKeeper session, through kezhuw's
//! `zookeeper-client`.
//!
//! How the trait maps onto ZooKeeper:
//! - **Root**: the configured root is the session's chroot. [`ZkClient::connect`] creates
//!   it (and its ancestors) if missing, then narrows the client to it with
//!   `zookeeper_client::Client::chroot`, which prefixes every request path and strips the
//!   prefix from every path the server sends back (watch events included). So keys seen by
//!   callers never include the root, and no code here has to remember to add or strip it.
//!   The key `/` is the root node itself.
//! - **Versions** are the znodes' data versions (`Stat.version`), so the server's own
//!   CheckOp, conditional setData and conditional delete compare them atomically. A
//!   deleted and re-created znode starts again at version 0: a version read before the
//!   deletion can match the new znode. That is ZooKeeper's model; callers that must tell
//!   incarnations apart keep a guard on a key that is never deleted (as
//!   [`crate::election`] does with its epoch key).
//! - **Transactions** are one `multi`. If it fails for want of a parent, the missing
//!   parents of the created keys are created (empty, persistent, outside the `multi`: they
//!   stay even if the `multi` then fails for another reason) and it is tried again. Deleting
//!   a key deletes its subtree, read just before and deleted bottom-up inside the same
//!   `multi`; if the subtree changed in between, the whole thing is tried again.
//! - **Watches** are persistent recursive watches (which ZooKeeper accepts on paths that
//!   do not exist yet). Notifications carry no data, so each creation or change is
//!   followed by a read: the value in a [`WatchEvent::Put`] is the value at the time of
//!   that read, and a key gone by then gets no Put (its Delete follows). Notifications
//!   sent while the connection is down are lost, so after a reconnect the watch is
//!   registered again and then sends [`WatchEvent::Resync`]. The stream ends when the
//!   session does.
//! - **Sessions**: ZooKeeper's `SyncConnected` is [`SessionState::Connected`],
//!   `Disconnected` is [`SessionState::Suspended`], and `Expired`, `Closed` and
//!   `AuthFailed` are [`SessionState::Expired`]. After that a client is dead for good:
//!   every operation fails with [`Error::SessionExpired`] (or [`Error::Closed`] after
//!   [`Coordination::close`]); make a new client.
//! - **Limits**: a request must fit ZooKeeper's `jute.maxbuffer` (1 MiB - 1 by default),
//!   framing included; [`Coordination::limits`] leaves room for that framing.
//! - **Ephemeral keys cannot have children** in ZooKeeper: creating a key below one fails
//!   with [`Error::Backend`] saying so.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use zookeeper_client as zk;
use zookeeper_client::{
    Acls, AddWatchMode, CreateMode, CreateOptions, EventType, MultiWriteError, MultiWriteResult,
};

use crate::{
    keys, ConflictKind, Coordination, CoordinationConfig, Error, Limits, Op, OpResult, Result,
    SessionState, Version, Versioned, Watch, WatchEvent, WATCH_QUEUE,
};

/// ZooKeeper's default `jute.maxbuffer`: the largest packet a server accepts.
const JUTE_MAX_BUFFER: usize = 0xfffff;
/// Bytes kept free below `jute.maxbuffer` for the request header and the `multi` framing.
const FRAMING_MARGIN: usize = 4096;
/// The longest request we send: operations counted as [`Plan::request_bytes`] does.
const MAX_REQUEST_BYTES: usize = JUTE_MAX_BUFFER - FRAMING_MARGIN;
/// An upper bound on what one operation of a `multi` adds beyond its path and data: the
/// op header (9), path and data lengths (8), the open ACL (27), flags or version (4).
const OP_OVERHEAD: usize = 64;
/// Operations per transaction we advertise (fewer if a long root makes each one bigger).
const MAX_OPS_PER_TXN: usize = 1000;
/// How often a transaction is retried when its subtree or parents changed under it.
const MAX_ATTEMPTS: usize = 8;
/// Watch notifications handled together: their reads are pipelined.
const WATCH_BATCH: usize = 512;

/// Keys, including missing parents, are created with the open ACL: the root (chroot) is
/// the unit of isolation, not ZooKeeper's ACLs.
const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());

/// A ZooKeeper session rooted at the configured chroot. Cheap to share behind an `Arc`;
/// every method may be called concurrently. Dropping it closes the session as
/// [`Coordination::close`] does, without waiting.
#[derive(Debug)]
pub struct ZkClient {
    shared: Arc<Shared>,
}

/// What the client and its watch tasks share. Watch tasks hold it weakly, so dropping
/// the [`ZkClient`] drops the session even while watches are open.
#[derive(Debug)]
struct Shared {
    /// The session's handle; `None` once closed. The session ends when the last handle
    /// is dropped, so operations clone the `Arc` for their duration only. A std mutex:
    /// it is held just to clone or take the handle, never across an await.
    client: Mutex<Option<Arc<zk::Client>>>,
    /// Our view of the session, fed by [`track_session`] and set to `Expired` by `close`.
    state: watch::Sender<SessionState>,
    limits: Limits,
    /// Length of the root, which prefixes every path on the wire; 0 for `/`.
    root_len: usize,
    /// How long `close` waits for the server to confirm the session's end.
    close_timeout: Duration,
}

impl ZkClient {
    /// Opens a session with the ensemble in `config.endpoints`, creates `config.root` if
    /// missing and works below it. Fails with [`Error::Unreachable`] if no session is
    /// established within `config.connect_timeout`.
    pub async fn connect(config: &CoordinationConfig) -> Result<ZkClient> {
        config.validate()?;
        let endpoints = config.endpoints.join(",");
        let deadline = Instant::now() + config.connect_timeout;
        let client = open_session(&endpoints, config, deadline).await?;
        if config.root != "/" {
            match tokio::time::timeout_at(deadline.into(), client.mkdir(&config.root, &PERSISTENT))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(zk::Error::NoChildrenForEphemerals)) => {
                    return Err(Error::Config(format!(
                        "root {} lies below an ephemeral znode",
                        config.root
                    )))
                }
                Ok(Err(e)) => return Err(map_err(e)),
                Err(_) => {
                    return Err(Error::Unreachable {
                        endpoints,
                        reason: format!(
                            "could not create root {} within {:?}",
                            config.root, config.connect_timeout
                        ),
                    })
                }
            }
        }
        let client = client.chroot(config.root.as_str()).map_err(|_| {
            Error::Config(format!(
                "root {:?} is not a valid ZooKeeper path",
                config.root
            ))
        })?;
        tracing::info!(
            endpoints = %endpoints,
            root = %config.root,
            session = %client.session_id(),
            timeout = ?client.session_timeout(),
            "ZooKeeper session established"
        );

        let (state, _) = watch::channel(SessionState::Connected);
        tokio::spawn(track_session(client.state_watcher(), state.clone()));
        let root_len = if config.root == "/" {
            0
        } else {
            config.root.len()
        };
        let limits = limits_for(root_len);
        Ok(ZkClient {
            shared: Arc::new(Shared {
                client: Mutex::new(Some(Arc::new(client))),
                state,
                limits,
                root_len,
                close_timeout: config.session_timeout,
            }),
        })
    }
}

/// Connects with retries until `deadline`: an ensemble that is still starting refuses
/// connections for a moment, and `zookeeper-client` gives up at the first round of
/// refusals when told to fail eagerly (which is what bounds one attempt).
async fn open_session(
    endpoints: &str,
    config: &CoordinationConfig,
    deadline: Instant,
) -> Result<zk::Client> {
    let unreachable = |reason: String| Error::Unreachable {
        endpoints: endpoints.to_owned(),
        reason,
    };
    let mut backoff = Duration::from_millis(50);
    let mut last_error = String::from("no attempt finished");
    loop {
        let attempt = zk::Client::connector()
            .with_session_timeout(config.session_timeout)
            .with_fail_eagerly()
            .connect(endpoints);
        match tokio::time::timeout_at(deadline.into(), attempt).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(zk::Error::BadArguments(what))) => {
                return Err(Error::Config(format!(
                    "ZooKeeper endpoints {endpoints:?}: {what}"
                )))
            }
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => break,
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep(backoff.min(deadline - now)).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
    Err(unreachable(format!(
        "no session within {:?} (last error: {last_error})",
        config.connect_timeout
    )))
}

/// Leaves room in every request for the framing and the root that prefixes each path.
fn limits_for(root_len: usize) -> Limits {
    let per_op = OP_OVERHEAD + root_len;
    let max_ops_per_txn = MAX_OPS_PER_TXN.min(MAX_REQUEST_BYTES / 2 / per_op).max(1);
    let max_txn_bytes = MAX_REQUEST_BYTES - max_ops_per_txn * per_op;
    Limits {
        max_ops_per_txn,
        max_txn_bytes,
        // One operation also carries its key (up to 4 KiB).
        max_value_bytes: max_txn_bytes - 4096,
    }
}

/// Feeds our [`SessionState`] from the client's state watcher until the session ends.
async fn track_session(mut zk_state: zk::StateWatcher, state: watch::Sender<SessionState>) {
    loop {
        let zk_now = zk_state.changed().await;
        let now = map_state(zk_now);
        tracing::info!(state = %zk_now, "ZooKeeper session state changed");
        // Expired is final, also when `close` set it first.
        state.send_if_modified(|current| {
            let changed = *current != SessionState::Expired && *current != now;
            if changed {
                *current = now;
            }
            changed
        });
        if zk_now.is_terminated() {
            return;
        }
    }
}

fn map_state(state: zk::SessionState) -> SessionState {
    match state {
        zk::SessionState::SyncConnected => SessionState::Connected,
        // Read-only sessions are never asked for; if one appears it cannot write.
        zk::SessionState::Disconnected | zk::SessionState::ConnectedReadOnly => {
            SessionState::Suspended
        }
        zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed => {
            SessionState::Expired
        }
    }
}

/// Maps a ZooKeeper error that has no operation-specific meaning.
fn map_err(e: zk::Error) -> Error {
    match e {
        zk::Error::ConnectionLoss => Error::ConnectionLoss("connection to ZooKeeper lost".into()),
        zk::Error::SessionExpired | zk::Error::SessionMoved => Error::SessionExpired,
        zk::Error::ClientClosed => Error::Closed,
        other => Error::Backend(format!("ZooKeeper: {other}")),
    }
}

/// A key as ZooKeeper accepts it: our path rules plus ZooKeeper's refused characters.
fn validate_key(key: &str) -> Result<()> {
    keys::validate(key)?;
    let refused = |c: char| {
        let u = u32::from(c);
        matches!(u, 0x00..=0x1f | 0x7f..=0x9f | 0xd800..=0xf8ff | 0xfff0..=0xffff)
    };
    if key.chars().any(refused) {
        return Err(Error::InvalidKey(key.to_owned()));
    }
    Ok(())
}

/// A caller's version as ZooKeeper's `int`. We only hand out versions in `0..=i32::MAX`;
/// anything else can never match, so it becomes `i32::MIN`, which no znode reaches in
/// practice (and never `-1`, which ZooKeeper reads as "any version").
fn zk_version(version: Version) -> i32 {
    i32::try_from(version)
        .ok()
        .filter(|v| *v >= 0)
        .unwrap_or(i32::MIN)
}

fn ephemeral_parent(key: &str) -> Error {
    Error::Backend(format!(
        "cannot create {key}: an ancestor is ephemeral, and ZooKeeper's ephemeral znodes cannot have children"
    ))
}

impl Shared {
    fn client(&self) -> Result<Arc<zk::Client>> {
        let guard = self
            .client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.as_ref().map(Arc::clone).ok_or(Error::Closed)
    }
}

#[async_trait::async_trait]
impl Coordination for ZkClient {
    fn backend(&self) -> &'static str {
        "zookeeper"
    }

    fn limits(&self) -> Limits {
        self.shared.limits
    }

    fn session_state(&self) -> watch::Receiver<SessionState> {
        self.shared.state.subscribe()
    }

    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        validate_key(key)?;
        let client = self.shared.client()?;
        match client.get_data(key).await {
            Ok((value, stat)) => Ok(Some(Versioned {
                value,
                version: stat.version.into(),
            })),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn children(&self, key: &str) -> Result<Vec<(String, Versioned)>> {
        validate_key(key)?;
        let client = self.shared.client()?;
        let mut names = match client.list_children(key).await {
            Ok(names) => names,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(map_err(e)),
        };
        names.sort_unstable();
        // Requests are sent when the futures are made, so all reads are in flight at once.
        let reads: Vec<_> = names
            .iter()
            .map(|name| client.get_data(&keys::join(key, name)))
            .collect();
        let mut children = Vec::with_capacity(names.len());
        for (name, read) in names.into_iter().zip(reads) {
            match read.await {
                Ok((value, stat)) => children.push((
                    name,
                    Versioned {
                        value,
                        version: stat.version.into(),
                    },
                )),
                // Deleted since the listing.
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok(children)
    }

    async fn transact(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.check_ops(&ops)?;
        let client = self.shared.client()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let subtrees = read_subtrees(&client, &ops, self.shared.root_len == 0).await?;
            let plan = Plan::build(&ops, &subtrees);
            let size = plan.request_bytes(self.shared.root_len);
            if size > MAX_REQUEST_BYTES {
                return Err(Error::TooLarge {
                    what: "transaction request",
                    size,
                    limit: MAX_REQUEST_BYTES,
                });
            }
            let mut writer = client.new_multi_writer();
            plan.add_to(&mut writer)?;
            let failure = match writer.commit().await {
                Ok(results) => return plan.results(&ops, results),
                Err(MultiWriteError::RequestFailed { source }) => return Err(map_err(source)),
                Err(MultiWriteError::OperationFailed { index, source }) => (index, source),
            };
            let (index, source) = failure;
            let Some(step) = plan.steps.get(index) else {
                return Err(Error::Backend(format!(
                    "ZooKeeper multi failed at unknown operation {index}: {source}"
                )));
            };
            let key = ops[step.origin].key();
            let conflict = |kind| Error::Conflict {
                index: step.origin,
                key: key.to_owned(),
                kind,
            };
            match (source, step.role, &step.kind) {
                (zk::Error::NodeExists, Role::Primary, _) => {
                    return Err(conflict(ConflictKind::Exists))
                }
                (zk::Error::NoNode, _, StepKind::Create { key: created, .. }) => {
                    if attempt >= MAX_ATTEMPTS {
                        return Err(conflict(ConflictKind::Missing));
                    }
                    tracing::debug!(key = %created, "creating missing parents");
                    create_parents(&client, &ops).await?;
                }
                (zk::Error::NoNode | zk::Error::NotEmpty, Role::Subtree, _)
                | (zk::Error::NotEmpty, _, _) => {
                    if attempt >= MAX_ATTEMPTS {
                        return Err(Error::Backend(format!(
                            "the subtree of {key} kept changing; gave up after {attempt} attempts"
                        )));
                    }
                    tracing::debug!(key, "subtree changed during delete; retrying");
                }
                (zk::Error::NoNode, _, _) => return Err(conflict(ConflictKind::Missing)),
                (zk::Error::BadVersion, _, _) => {
                    return Err(conflict(ConflictKind::VersionMismatch))
                }
                (zk::Error::NoChildrenForEphemerals, _, _) => return Err(ephemeral_parent(key)),
                (other, _, _) => return Err(map_err(other)),
            }
        }
    }

    async fn watch(&self, key: &str) -> Result<Watch> {
        validate_key(key)?;
        let client = self.shared.client()?;
        // ZooKeeper accepts a persistent watch on a path that does not exist yet.
        let watcher = client
            .watch(key, AddWatchMode::PersistentRecursive)
            .await
            .map_err(map_err)?;
        drop(client);
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        let outbox = Outbox {
            tx,
            overflowed: false,
        };
        tokio::spawn(forward(
            Arc::downgrade(&self.shared),
            key.to_owned(),
            watcher,
            outbox,
            self.shared.state.subscribe(),
        ));
        Ok(Watch::new(rx))
    }

    async fn close(&self) -> Result<()> {
        let client = {
            let mut guard = self
                .shared
                .client
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            guard.take()
        };
        let Some(client) = client else { return Ok(()) };
        let mut zk_state = client.state_watcher();
        // Dropping the last handle makes the session send closeSession; the server deletes
        // the session's ephemeral znodes before it answers. Operations in flight hold
        // handles of their own and delay this until they finish.
        drop(client);
        let confirmed = tokio::time::timeout(self.shared.close_timeout, async {
            while !zk_state.peek_state().is_terminated() {
                zk_state.changed().await;
            }
        })
        .await;
        if confirmed.is_err() {
            tracing::warn!(
                after = ?self.shared.close_timeout,
                "ZooKeeper did not confirm the session's close; it ends when the session times out"
            );
        }
        self.shared.state.send_replace(SessionState::Expired);
        Ok(())
    }
}

impl ZkClient {
    fn check_ops(&self, ops: &[Op]) -> Result<()> {
        let limits = self.shared.limits;
        if ops.len() > limits.max_ops_per_txn {
            return Err(Error::TooLarge {
                what: "operation count",
                size: ops.len(),
                limit: limits.max_ops_per_txn,
            });
        }
        let mut total = 0;
        for op in ops {
            validate_key(op.key())?;
            if let Op::Create { value, .. } | Op::Set { value, .. } = op {
                if value.len() > limits.max_value_bytes {
                    return Err(Error::TooLarge {
                        what: "value",
                        size: value.len(),
                        limit: limits.max_value_bytes,
                    });
                }
            }
            total += op.size();
        }
        if total > limits.max_txn_bytes {
            return Err(Error::TooLarge {
                what: "transaction",
                size: total,
                limit: limits.max_txn_bytes,
            });
        }
        Ok(())
    }
}

/// Reads, for every Delete in `ops`, the keys below it (in no particular order); empty for
/// other operations and for keys that do not exist. Without a chroot, ZooKeeper's own
/// `/zookeeper` subtree (quotas, config) is left out: the server refuses to delete it.
async fn read_subtrees(
    client: &zk::Client,
    ops: &[Op],
    unrooted: bool,
) -> Result<Vec<Vec<String>>> {
    let mut subtrees = Vec::with_capacity(ops.len());
    for op in ops {
        let mut below = match op {
            Op::Delete { key, .. } => descendants(client, key).await?,
            _ => Vec::new(),
        };
        if unrooted {
            below.retain(|k| !keys::is_at_or_below(k, "/zookeeper"));
        }
        subtrees.push(below);
    }
    Ok(subtrees)
}

/// Every key below `key`, level by level, with each level's listings in flight together.
async fn descendants(client: &zk::Client, key: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut level = vec![key.to_owned()];
    while !level.is_empty() {
        // Requests are sent when the futures are made.
        let listings: Vec<_> = level
            .iter()
            .map(|parent| client.list_children(parent))
            .collect();
        let mut next = Vec::new();
        for (parent, listing) in level.iter().zip(listings) {
            match listing.await {
                Ok(names) => next.extend(names.iter().map(|name| keys::join(parent, name))),
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        found.extend(next.iter().cloned());
        level = next;
    }
    Ok(found)
}

/// Creates the missing parents of every key the transaction creates, except parents the
/// transaction itself creates or deletes before that key's operation (so the `multi` sees
/// the tree it expects). Done only after a `multi` failed for a missing parent: most
/// creates have their parents, and a create of an existing znode still costs ZooKeeper a
/// log write. The creates are sent together, outermost first (a key sorts before the keys
/// below it); ZooKeeper applies one session's requests in order.
async fn create_parents(client: &zk::Client, ops: &[Op]) -> Result<()> {
    let touched = |origin: usize, ancestor: &str| {
        ops[..origin].iter().any(|op| match op {
            Op::Create { key, .. } => key == ancestor,
            Op::Delete { key, .. } => keys::is_at_or_below(ancestor, key),
            _ => false,
        })
    };
    let mut parents = BTreeSet::new();
    for (origin, op) in ops.iter().enumerate() {
        if let Op::Create { key, .. } = op {
            parents.extend(
                keys::ancestors(key)
                    .into_iter()
                    .filter(|a| !touched(origin, a)),
            );
        }
    }
    let creates: Vec<_> = parents
        .iter()
        .map(|parent| (parent, client.create(parent, &[], &PERSISTENT)))
        .collect();
    for (parent, create) in creates {
        match create.await {
            // NoNode: an outer parent vanished meanwhile; the next attempt finds out.
            Ok(_) | Err(zk::Error::NodeExists | zk::Error::NoNode) => {}
            Err(zk::Error::NoChildrenForEphemerals) => return Err(ephemeral_parent(parent)),
            Err(e) => return Err(map_err(e)),
        }
    }
    Ok(())
}

/// Why a step of a `multi` is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The caller's operation itself.
    Primary,
    /// A parent the transaction deleted earlier and a later Create needs again.
    Parent,
    /// A key below one the caller deletes.
    Subtree,
}

#[derive(Debug)]
enum StepKind<'a> {
    Create {
        key: String,
        value: &'a [u8],
        ephemeral: bool,
    },
    Set {
        key: &'a str,
        value: &'a [u8],
        version: Option<i32>,
    },
    Delete {
        key: String,
        version: Option<i32>,
    },
    Check {
        key: &'a str,
        version: i32,
    },
}

#[derive(Debug)]
struct Step<'a> {
    /// Index of the caller's operation this step serves.
    origin: usize,
    role: Role,
    kind: StepKind<'a>,
}

/// The `multi` for a list of operations, with where each caller's result comes from.
#[derive(Debug)]
struct Plan<'a> {
    steps: Vec<Step<'a>>,
}

/// What a transaction has done to the tree so far, as far as [`Plan::build`] needs it.
#[derive(Debug, Default)]
struct Effects<'a> {
    /// Keys created by earlier steps and not deleted since.
    created: BTreeSet<String>,
    /// Keys whose subtrees earlier steps deleted.
    deleted: Vec<&'a str>,
}

impl<'a> Effects<'a> {
    /// Whether an earlier step deleted `key` (and none created it again).
    fn gone(&self, key: &str) -> bool {
        !self.created.contains(key) && self.deleted.iter().any(|d| keys::is_at_or_below(key, d))
    }

    /// Whether `key` lies strictly below a key an earlier step created (so it cannot exist
    /// yet, and cannot be created outside the `multi`) and no step created it.
    fn missing_below_created(&self, key: &str) -> bool {
        !self.created.contains(key)
            && self
                .created
                .iter()
                .any(|c| c != key && keys::is_at_or_below(key, c))
    }

    fn create(&mut self, key: &str) {
        self.created.insert(key.to_owned());
    }

    fn delete(&mut self, key: &'a str) {
        self.created.retain(|k| !keys::is_at_or_below(k, key));
        self.deleted.push(key);
    }

    /// Keys strictly below `key` that earlier steps created.
    fn created_below<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s str> {
        self.created
            .iter()
            .map(String::as_str)
            .filter(move |k| *k != key && keys::is_at_or_below(k, key))
    }
}

impl<'a> Plan<'a> {
    /// Expands `ops` into ZooKeeper operations, following what the transaction does to the
    /// tree as it goes: a Delete also deletes the keys below it that exist at that point
    /// (read from the store, or created earlier in the transaction), deepest first; a
    /// Create below a key the transaction deleted earlier re-creates the missing parents.
    fn build(ops: &'a [Op], subtrees: &'a [Vec<String>]) -> Plan<'a> {
        let mut steps = Vec::with_capacity(ops.len());
        let mut effects = Effects::default();
        let mut push = |origin, role, kind| steps.push(Step { origin, role, kind });
        for (origin, op) in ops.iter().enumerate() {
            match op {
                Op::Create {
                    key,
                    value,
                    ephemeral,
                } => {
                    for parent in keys::ancestors(key) {
                        if effects.gone(parent) || effects.missing_below_created(parent) {
                            let kind = StepKind::Create {
                                key: parent.to_owned(),
                                value: &[],
                                ephemeral: false,
                            };
                            push(origin, Role::Parent, kind);
                            effects.create(parent);
                        }
                    }
                    let kind = StepKind::Create {
                        key: key.clone(),
                        value,
                        ephemeral: *ephemeral,
                    };
                    push(origin, Role::Primary, kind);
                    effects.create(key);
                }
                Op::Set {
                    key,
                    value,
                    version,
                } => {
                    let kind = StepKind::Set {
                        key,
                        value,
                        version: version.map(zk_version),
                    };
                    push(origin, Role::Primary, kind);
                }
                Op::Check { key, version } => {
                    push(
                        origin,
                        Role::Primary,
                        StepKind::Check {
                            key,
                            version: zk_version(*version),
                        },
                    );
                }
                Op::Delete { key, version } => {
                    let stored = subtrees
                        .get(origin)
                        .into_iter()
                        .flatten()
                        .map(String::as_str);
                    let below: BTreeSet<String> = stored
                        .filter(|k| !effects.gone(k))
                        .chain(effects.created_below(key))
                        .map(str::to_owned)
                        .collect();
                    // A key sorts before every key below it, so reverse order is bottom-up.
                    for k in below.into_iter().rev() {
                        push(
                            origin,
                            Role::Subtree,
                            StepKind::Delete {
                                key: k,
                                version: None,
                            },
                        );
                    }
                    let version = version.map(zk_version);
                    if key == "/" {
                        // The root stays; its version is still checked if asked for.
                        if let Some(version) = version {
                            push(origin, Role::Primary, StepKind::Check { key, version });
                        }
                    } else {
                        push(
                            origin,
                            Role::Primary,
                            StepKind::Delete {
                                key: key.clone(),
                                version,
                            },
                        );
                    }
                    effects.delete(key);
                }
            }
        }
        Plan { steps }
    }

    /// The request's size on the wire, an upper bound.
    fn request_bytes(&self, root_len: usize) -> usize {
        let body: usize = self
            .steps
            .iter()
            .map(|step| {
                let (key_len, value_len) = match &step.kind {
                    StepKind::Create { key, value, .. } => (key.len(), value.len()),
                    StepKind::Set { key, value, .. } => (key.len(), value.len()),
                    StepKind::Delete { key, .. } => (key.len(), 0),
                    StepKind::Check { key, .. } => (key.len(), 0),
                };
                OP_OVERHEAD + root_len + key_len + value_len
            })
            .sum();
        // The request header and the multi's end marker are in FRAMING_MARGIN.
        body
    }

    fn add_to(&self, writer: &mut zk::MultiWriter<'_>) -> Result<()> {
        for step in &self.steps {
            let added = match &step.kind {
                StepKind::Create {
                    key,
                    value,
                    ephemeral,
                } => {
                    let options = if *ephemeral { &EPHEMERAL } else { &PERSISTENT };
                    writer.add_create(key, value, options)
                }
                StepKind::Set {
                    key,
                    value,
                    version,
                } => writer.add_set_data(key, value, *version),
                StepKind::Delete { key, version } => writer.add_delete(key, *version),
                StepKind::Check { key, version } => writer.add_check_version(key, *version),
            };
            added.map_err(|e| match e {
                zk::Error::BadArguments(_) => Error::InvalidKey(step.kind.key().to_owned()),
                other => map_err(other),
            })?;
        }
        Ok(())
    }

    /// The caller's results from the `multi`'s.
    fn results(&self, ops: &[Op], results: Vec<MultiWriteResult>) -> Result<Vec<OpResult>> {
        let mut out = Vec::with_capacity(ops.len());
        let mut has_step = vec![false; ops.len()];
        for (step, result) in self.steps.iter().zip(results) {
            if step.role != Role::Primary {
                continue;
            }
            has_step[step.origin] = true;
            out.push(match (&ops[step.origin], result) {
                // A new znode's data version is 0. (The Stat of a create inside a multi is
                // garbage on some servers: ZOOKEEPER-4026.)
                (Op::Create { .. }, _) => OpResult::Written(0),
                (Op::Set { .. }, MultiWriteResult::SetData { stat }) => {
                    OpResult::Written(stat.version.into())
                }
                (Op::Delete { .. }, _) => OpResult::Deleted,
                (Op::Check { .. }, _) => OpResult::Checked,
                (op, other) => {
                    return Err(Error::Backend(format!(
                        "unexpected ZooKeeper result {other:?} for {op:?}"
                    )))
                }
            });
        }
        // A Delete of the root without a version has no step of its own.
        for (origin, op) in ops.iter().enumerate() {
            if !has_step[origin] {
                match op {
                    Op::Delete { .. } => out.insert(origin, OpResult::Deleted),
                    other => {
                        return Err(Error::Backend(format!(
                            "no ZooKeeper operation for {other:?}"
                        )))
                    }
                }
            }
        }
        Ok(out)
    }
}

impl StepKind<'_> {
    fn key(&self) -> &str {
        match self {
            StepKind::Create { key, .. } | StepKind::Delete { key, .. } => key,
            StepKind::Set { key, .. } | StepKind::Check { key, .. } => key,
        }
    }
}

/// The sending end of a watch, bounded by [`WATCH_QUEUE`]. When the queue is full,
/// events are dropped and a [`WatchEvent::Resync`] is owed, delivered as soon as there
/// is room again.
#[derive(Debug)]
struct Outbox {
    tx: mpsc::Sender<WatchEvent>,
    overflowed: bool,
}

impl Outbox {
    /// Queues `event`; false once the watcher is gone.
    fn push(&mut self, event: WatchEvent) -> bool {
        use mpsc::error::TrySendError;
        if self.overflowed {
            match self.tx.try_send(WatchEvent::Resync) {
                Ok(()) => self.overflowed = false,
                Err(TrySendError::Full(_)) => return true,
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.overflowed = true;
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

/// Turns a persistent recursive watcher's notifications on `key` into [`WatchEvent`]s
/// until the watch is dropped, the client closed or the session ended.
async fn forward(
    shared: Weak<Shared>,
    key: String,
    mut watcher: zk::PersistentWatcher,
    mut outbox: Outbox,
    mut state: watch::Receiver<SessionState>,
) {
    // Set by Disconnected: the reconnect that follows owes a Resync.
    let mut disconnected = false;
    loop {
        let first = tokio::select! {
            () = outbox.tx.closed() => return,
            permit = outbox.tx.reserve(), if outbox.overflowed => {
                let Ok(permit) = permit else { return };
                permit.send(WatchEvent::Resync);
                outbox.overflowed = false;
                continue;
            }
            changed = state.changed() => {
                // `close` sets Expired before the session confirms: end at once.
                if changed.is_err() || *state.borrow_and_update() == SessionState::Expired {
                    return;
                }
                continue;
            }
            event = watcher.changed() => event,
        };
        // Take the node events that have arrived too, so their reads go out together. A
        // session event ends the batch (and after a terminal one, asking for more panics).
        let mut batch = vec![first];
        while batch.len() < WATCH_BATCH
            && batch
                .last()
                .is_some_and(|e| e.event_type != EventType::Session)
        {
            tokio::select! {
                biased;
                event = watcher.changed() => batch.push(event),
                () = std::future::ready(()) => break,
            }
        }
        let session = match batch.last() {
            Some(e) if e.event_type == EventType::Session => batch.pop(),
            _ => None,
        };
        if !deliver(&shared, batch, &mut outbox).await {
            return;
        }
        let Some(session) = session else { continue };
        match session.session_state {
            zk::SessionState::Disconnected | zk::SessionState::ConnectedReadOnly => {
                disconnected = true
            }
            zk::SessionState::SyncConnected if disconnected => {
                // zookeeper-client 0.11.2 does not re-register persistent watches on a
                // reconnect (`WatchManager::resend_watches` never selects SetWatches2), so
                // this watch is deaf now: register it again, then drop the old one. Changes
                // made while it was deaf are lost, hence the Resync, sent after the new
                // registration so the re-read it asks for misses nothing.
                let Some(client) = shared.upgrade().and_then(|shared| shared.client().ok()) else {
                    return;
                };
                match client.watch(&key, AddWatchMode::PersistentRecursive).await {
                    Ok(renewed) => watcher = renewed,
                    // Lost again: the old watcher reports the next reconnect; try then.
                    Err(zk::Error::ConnectionLoss) => continue,
                    Err(e) => {
                        tracing::debug!(key, error = %e, "watch not renewed after reconnect; ending it");
                        return;
                    }
                }
                disconnected = false;
                // Notifications sent while the connection was down are lost (ZOOKEEPER-4698).
                if !outbox.push(WatchEvent::Resync) {
                    return;
                }
            }
            zk::SessionState::SyncConnected => {}
            zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed => {
                return
            }
        }
    }
}

/// Emits a batch of node notifications in order; false when the watch is over.
async fn deliver(shared: &Weak<Shared>, batch: Vec<zk::WatchedEvent>, outbox: &mut Outbox) -> bool {
    let wants_data = |e: &zk::WatchedEvent| {
        matches!(
            e.event_type,
            EventType::NodeCreated | EventType::NodeDataChanged
        )
    };
    let mut reads = VecDeque::new();
    if batch.iter().any(wants_data) {
        let Some(client) = shared.upgrade().and_then(|shared| shared.client().ok()) else {
            return false;
        };
        // Sent now, in order; awaited in order below.
        reads.extend(
            batch
                .iter()
                .filter(|e| wants_data(e))
                .map(|e| client.get_data(&e.path)),
        );
    }
    let mut resync_sent = false;
    for event in batch {
        let delivered = match event.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                let Some(read) = reads.pop_front() else {
                    continue;
                };
                match read.await {
                    Ok((value, stat)) => outbox.push(WatchEvent::Put {
                        key: event.path,
                        value,
                        version: stat.version.into(),
                    }),
                    // Deleted since: its Delete follows.
                    Err(zk::Error::NoNode) => true,
                    Err(e) if !resync_sent => {
                        tracing::debug!(key = %event.path, error = %e, "watch read failed; asking for a resync");
                        resync_sent = true;
                        outbox.push(WatchEvent::Resync)
                    }
                    Err(_) => true,
                }
            }
            EventType::NodeDeleted => outbox.push(WatchEvent::Delete { key: event.path }),
            // Recursive watches do not report these; nothing to say anyway. Session
            // events never reach here.
            EventType::NodeChildrenChanged | EventType::Session => true,
        };
        if !delivered {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(key: &str) -> Op {
        Op::Create {
            key: key.into(),
            value: b"v".to_vec(),
            ephemeral: false,
        }
    }

    fn delete(key: &str) -> Op {
        Op::Delete {
            key: key.into(),
            version: Some(3),
        }
    }

    fn describe(plan: &Plan<'_>) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| {
                let what = match &s.kind {
                    StepKind::Create { key, .. } => format!("create {key}"),
                    StepKind::Set { key, .. } => format!("set {key}"),
                    StepKind::Delete { key, version } => format!("delete {key} {version:?}"),
                    StepKind::Check { key, version } => format!("check {key} {version}"),
                };
                format!("{} {:?} {what}", s.origin, s.role)
            })
            .collect()
    }

    #[test]
    fn a_delete_takes_its_subtree_bottom_up() {
        let ops = vec![delete("/a")];
        let subtrees = vec![vec!["/a/b".into(), "/a/c".into(), "/a/b/x".into()]];
        let plan = Plan::build(&ops, &subtrees);
        assert_eq!(
            describe(&plan),
            [
                "0 Subtree delete /a/c None",
                "0 Subtree delete /a/b/x None",
                "0 Subtree delete /a/b None",
                "0 Primary delete /a Some(3)",
            ]
        );
    }

    #[test]
    fn a_transaction_sees_its_own_earlier_steps() {
        // Created then deleted inside the transaction; deleted, then created below.
        let ops = vec![create("/a/new"), delete("/a"), create("/a/b/c")];
        let subtrees = vec![vec![], vec!["/a/old".into()], vec![]];
        let plan = Plan::build(&ops, &subtrees);
        assert_eq!(
            describe(&plan),
            [
                "0 Primary create /a/new",
                "1 Subtree delete /a/old None",
                "1 Subtree delete /a/new None",
                "1 Primary delete /a Some(3)",
                "2 Parent create /a",
                "2 Parent create /a/b",
                "2 Primary create /a/b/c",
            ]
        );
    }

    #[test]
    fn deleting_the_root_keeps_it() {
        let ops = vec![Op::Delete {
            key: "/".into(),
            version: None,
        }];
        let subtrees = vec![vec!["/x".into()]];
        let plan = Plan::build(&ops, &subtrees);
        assert_eq!(describe(&plan), ["0 Subtree delete /x None"]);
    }

    #[test]
    fn versions_outside_zookeepers_range_never_match() {
        assert_eq!(zk_version(0), 0);
        assert_eq!(zk_version(7), 7);
        assert_eq!(zk_version(-1), i32::MIN, "-1 would mean any version");
        assert_eq!(zk_version(i64::from(i32::MAX) + 1), i32::MIN);
    }

    #[test]
    fn limits_fit_jute_maxbuffer() {
        for root_len in [0, 7, 200, 4096] {
            let limits = limits_for(root_len);
            let worst = limits.max_txn_bytes
                + limits.max_ops_per_txn * (OP_OVERHEAD + root_len)
                + OP_OVERHEAD;
            assert!(worst <= JUTE_MAX_BUFFER, "root of {root_len}: {limits:?}");
            assert!(
                limits.max_value_bytes > 500_000,
                "root of {root_len}: {limits:?}"
            );
        }
        assert_eq!(limits_for(7).max_ops_per_txn, 1000);
    }

    #[tokio::test]
    async fn a_full_outbox_drops_events_and_owes_a_resync() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut outbox = Outbox {
            tx,
            overflowed: false,
        };
        let event = |k: &str| WatchEvent::Delete { key: k.into() };
        assert!(outbox.push(event("/1")) && outbox.push(event("/2")));
        assert!(outbox.push(event("/3")), "dropped, not an error");
        assert!(outbox.overflowed);
        assert_eq!(rx.recv().await, Some(event("/1")));
        assert!(outbox.push(event("/4")));
        assert_eq!(rx.recv().await, Some(event("/2")));
        assert_eq!(
            rx.recv().await,
            Some(WatchEvent::Resync),
            "the resync comes before anything newer"
        );
        assert!(outbox.overflowed, "/4 found the queue full again");
        assert!(outbox.push(event("/5")));
        assert_eq!(rx.recv().await, Some(WatchEvent::Resync));
        assert_eq!(rx.recv().await, Some(event("/5")));
        drop(rx);
        assert!(!outbox.push(event("/6")), "the watcher is gone");
    }

    #[test]
    fn zookeeper_refused_characters_are_invalid_keys() {
        assert!(validate_key("/a/b").is_ok());
        assert!(matches!(
            validate_key("/a\u{1}b"),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            validate_key("/a\u{fff5}"),
            Err(Error::InvalidKey(_))
        ));
    }
}
