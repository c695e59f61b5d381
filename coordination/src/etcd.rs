//! The etcd v3 backend: [`EtcdClient`], one client with one session, through `etcd-client`.
//!
//! ## How the trait's semantics map onto etcd
//! - **Keys.** A caller's key `/a/b` is the etcd key `<root>/a/b` (`config.root` is a plain
//!   key prefix; with root `/` keys are stored as they are). Keys handed back never
//!   include the root. `/` itself names the root: it can be listed and watched but not
//!   written ([`Error::InvalidKey`]).
//! - **Hierarchy** is emulated on etcd's flat key space. [`Coordination::children`] lists
//!   the range `<root><key>/` and keeps the keys with no further `/`. A create needs its
//!   parent: every transaction checks (an etcd Compare) that the direct parent of each key
//!   it creates exists; if one is missing, the missing ancestors are created first
//!   (empty values, outermost first, each create-if-absent, all in one request of nested
//!   transactions) and the transaction is sent again. Ancestors lie *outside* the
//!   caller's transaction, as with ZooKeeper's `creatingParentsIfNeeded`, so a
//!   transaction that then fails may leave them behind — except ancestors that lie below
//!   a key the same transaction creates (`/t` and `/t/p/0` together): those are written
//!   inside it. A delete removes the key and the range `<key>/` in the same transaction.
//!   Keys below an ephemeral key are not deleted with it when the session ends
//!   (ZooKeeper forbids them; do not create them).
//! - **Versions** are the key's `mod_revision`: unique per write, never 0.
//! - **Transactions** are one etcd Txn. Each operation contributes one Compare (Create:
//!   `create_revision == 0`; Set/Delete without a version: `version > 0`, i.e. exists;
//!   with a version, and Check: `mod_revision == v`). A Set keeps the key's lease
//!   (`ignore_lease`), so an ephemeral key stays ephemeral.
//! - **Conflicts.** The Txn's else branch reads (keys only) every key it compared, so a
//!   failed transaction returns the state the compares saw, atomically; the first
//!   operation whose condition is false in that snapshot is reported as
//!   [`Error::Conflict`]. If the caller's conditions all hold, only a parent was missing.
//! - **Watches** are an etcd watch on `[<root><key>, <root><key>0)` (`0` follows `/`),
//!   filtered with [`keys::is_at_or_below`] so `/a` does not see `/ab`; events come in
//!   revision order. When the stream breaks (connection lost, server restarted) or etcd
//!   cancels it (e.g. a watcher fallen behind compacted history), the task re-creates the
//!   watch *from the current revision* and then queues a [`WatchEvent::Resync`] — after
//!   every reconnect, as the trait promises, and only once the new watch exists, so a
//!   re-read on the Resync misses nothing: the caller is back in the "watch, then read"
//!   position it started from. Resuming from the last revision seen instead would replay
//!   the missed events *after* the Resync, older than the caller's re-read. When the
//!   queue overflows, events are dropped and one Resync is queued as soon as there is
//!   room.
//! - **Session** is a lease with TTL = the session timeout rounded up to whole seconds
//!   (etcd may raise it to its minimum), kept alive every TTL/3 by a task. The state is
//!   Connected while keep-alives are answered, Suspended once one fails, and Expired when
//!   etcd says the lease is gone or a TTL has passed since the last keep-alive that
//!   succeeded (counted from when it was *sent*, so this side gives up no later than the
//!   server). An expired client is dead: every operation returns
//!   [`Error::SessionExpired`] and its watches end; make a new client.
//! - **Limits** follow etcd's defaults (`--max-txn-ops` 128, `--max-request-bytes`
//!   1.5 MiB): a Delete costs two etcd operations, so a transaction takes at most 64
//!   operations; the byte limits leave room for the root prefix, the compares and the
//!   reads of the else branch.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, KvClient,
    LeaseClient, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchClient, WatchOptions,
    WatchResponse, WatchStream,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::{
    keys, ConflictKind, Coordination, CoordinationConfig, Error, Limits, Op, OpResult, Result,
    SessionState, Version, Versioned, Watch, WatchEvent, WATCH_QUEUE,
};

/// etcd's default `--max-txn-ops`; compares, then-operations and else-operations each
/// count against it separately.
const ETCD_MAX_TXN_OPS: usize = 128;
/// etcd's default `--max-request-bytes`.
const ETCD_MAX_REQUEST_BYTES: usize = 1_572_864;
/// What the protobuf encoding adds per compare or operation, generously.
const ETCD_OP_OVERHEAD: usize = 24;
/// What callers may send: a Delete takes two etcd operations, so 128 / 2.
const LIMITS: Limits = Limits {
    max_ops_per_txn: ETCD_MAX_TXN_OPS / 2,
    max_txn_bytes: 1_400_000,
    // ZooKeeper's limit too (jute.maxbuffer); leaves a transaction of one such value
    // room for a long key.
    max_value_bytes: 1 << 20,
};
/// Largest message accepted from etcd (tonic's default is 4 MiB): a watch catching up, or
/// a batch of children's values, can carry several values of up to ~1.4 MiB.
const MAX_MESSAGE_BYTES: usize = 256 << 20;
/// Children whose values are read in one request.
const CHILDREN_BATCH: usize = 64;
/// How often a transaction is re-sent when the parents it created vanished again.
const PARENT_ATTEMPTS: usize = 5;
/// HTTP/2 pings on a connection with open streams. etcd refuses pings more frequent than
/// every 5 s (`--grpc-keepalive-min-time`); lost sessions are noticed by the lease
/// keep-alive's own timeout, this only clears out connections that died silently.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(10);
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of an etcd cluster with one session (lease). See the module docs for how
/// the [`Coordination`] semantics map onto etcd. Thread-safe; share it behind an `Arc`.
/// Dropping it without [`Coordination::close`] revokes the lease in the background if a
/// runtime is still there; otherwise the session's keys go when its TTL passes.
pub struct EtcdClient {
    shared: Arc<Shared>,
    keep_alive: JoinHandle<()>,
}

/// What the client, its keep-alive task and its watch tasks share.
struct Shared {
    kv: KvClient,
    watch: WatchClient,
    lease: LeaseClient,
    /// `config.root`, or empty for root `/`.
    prefix: String,
    lease_id: i64,
    /// The lease's TTL as etcd granted it.
    ttl: Duration,
    /// Bound on each request; the TTL, since no answer within it means the session is
    /// about to be lost anyway.
    request_timeout: Duration,
    /// The configured endpoints, for messages.
    endpoints: String,
    state: watch::Sender<SessionState>,
    closed: watch::Sender<bool>,
}

impl EtcdClient {
    /// Connects to the cluster at `config.endpoints` and opens a session (grants the
    /// lease). Fails with [`Error::Unreachable`] naming the endpoints if no grant is
    /// answered within `config.connect_timeout`.
    pub async fn connect(config: &CoordinationConfig) -> Result<EtcdClient> {
        config.validate()?;
        if config.endpoints.is_empty() {
            return Err(Error::Config(
                "the etcd backend needs at least one endpoint".into(),
            ));
        }
        let endpoints = config.endpoints.join(",");
        let ttl_secs = config.session_timeout.as_millis().div_ceil(1000).max(1);
        let ttl_secs = i64::try_from(ttl_secs)
            .map_err(|_| Error::Config("session timeout too long".into()))?;
        let options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_keep_alive(HTTP2_PING_INTERVAL, HTTP2_PING_TIMEOUT)
            .with_keep_alive_while_idle(false);
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|e| match e {
                etcd_client::Error::InvalidUri(e) => {
                    Error::Config(format!("etcd endpoints {endpoints}: {e}"))
                }
                other => Error::Unreachable {
                    endpoints: endpoints.clone(),
                    reason: other.to_string(),
                },
            })?;
        let mut lease = client.lease_client();
        // The client connects lazily: only an answered request proves the connection.
        let mut last_error = String::from("no answer");
        let started = Instant::now();
        let granted = tokio::time::timeout(config.connect_timeout, async {
            loop {
                match lease.grant(ttl_secs, None).await {
                    Ok(granted) => return granted,
                    Err(e) => last_error = e.to_string(),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .map_err(|_| Error::Unreachable {
            endpoints: endpoints.clone(),
            reason: format!("{last_error} (gave up after {:?})", config.connect_timeout),
        })?;
        if granted.ttl() <= 0 || !granted.error().is_empty() {
            return Err(Error::Backend(format!(
                "etcd refused a lease: {}",
                granted.error()
            )));
        }
        let ttl = Duration::from_secs(granted.ttl().unsigned_abs());
        let prefix = if config.root == "/" {
            String::new()
        } else {
            config.root.clone()
        };
        let shared = Arc::new(Shared {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            lease,
            prefix,
            lease_id: granted.id(),
            ttl,
            request_timeout: ttl.max(Duration::from_secs(1)),
            endpoints,
            state: watch::channel(SessionState::Connected).0,
            closed: watch::channel(false).0,
        });
        // The root and its ancestors exist, as a ZooKeeper chroot does, so a client with
        // a shorter root sees this one's tree as a tree.
        let root_keys: Vec<String> = keys::ancestors(&config.root)
            .into_iter()
            .chain(Some(config.root.as_str()).filter(|r| *r != "/"))
            .map(str::to_owned)
            .collect();
        if let Err(e) = shared.create_parents(&root_keys).await {
            let _ = shared.revoke().await;
            return Err(e);
        }
        tracing::info!(endpoints = %shared.endpoints, root = %config.root, lease = shared.lease_id, ?ttl, "etcd session opened");
        let keep_alive = tokio::spawn(keep_alive(Arc::clone(&shared), started));
        Ok(EtcdClient { shared, keep_alive })
    }

    /// The session's lease id, as etcd knows it.
    pub fn lease_id(&self) -> i64 {
        self.shared.lease_id
    }
}

impl fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdClient")
            .field("endpoints", &self.shared.endpoints)
            .field("prefix", &self.shared.prefix)
            .field("lease_id", &self.shared.lease_id)
            .field("state", &*self.shared.state.borrow())
            .finish()
    }
}

impl Drop for EtcdClient {
    fn drop(&mut self) {
        self.keep_alive.abort();
        if self.shared.closed.send_replace(true) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = Arc::clone(&self.shared);
            runtime.spawn(async move {
                let _ = shared.revoke().await;
            });
        }
    }
}

#[async_trait::async_trait]
impl Coordination for EtcdClient {
    fn backend(&self) -> &'static str {
        "etcd"
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    fn session_state(&self) -> watch::Receiver<SessionState> {
        self.shared.state.subscribe()
    }

    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        keys::validate(key)?;
        let full = self.shared.full(key);
        let resp = self
            .shared
            .call("get", self.shared.kv.clone().get(full, None))
            .await?;
        Ok(resp.kvs().first().map(|kv| Versioned {
            value: kv.value().to_vec(),
            version: kv.mod_revision(),
        }))
    }

    async fn children(&self, key: &str) -> Result<Vec<(String, Versioned)>> {
        keys::validate(key)?;
        let dir = self.shared.dir(key);
        let options = GetOptions::new().with_prefix().with_keys_only();
        let listing = self
            .shared
            .call(
                "children",
                self.shared.kv.clone().get(dir.as_str(), Some(options)),
            )
            .await?;
        // The range holds every descendant; the direct children have no further '/'.
        let names: Vec<String> = listing
            .kvs()
            .iter()
            .filter_map(|kv| {
                kv.key_str()
                    .ok()?
                    .strip_prefix(dir.as_str())
                    .map(str::to_owned)
            })
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .collect();
        let mut children = Vec::with_capacity(names.len());
        for batch in names.chunks(CHILDREN_BATCH) {
            let reads: Vec<TxnOp> = batch
                .iter()
                .map(|name| TxnOp::get(format!("{dir}{name}"), None))
                .collect();
            let resp = self
                .shared
                .call(
                    "children",
                    self.shared.kv.clone().txn(Txn::new().and_then(reads)),
                )
                .await?;
            for (name, read) in batch.iter().zip(resp.op_responses()) {
                // A child deleted since the listing is simply not there any more.
                if let TxnOpResponse::Get(read) = read {
                    if let Some(kv) = read.kvs().first() {
                        let value = Versioned {
                            value: kv.value().to_vec(),
                            version: kv.mod_revision(),
                        };
                        children.push((name.clone(), value));
                    }
                }
            }
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(children)
    }

    async fn transact(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        check_ops(&ops)?;
        let plan = self.shared.plan(&ops)?;
        for _ in 0..PARENT_ATTEMPTS {
            let resp = self
                .shared
                .call("transact", self.shared.kv.clone().txn(plan.txn.clone()))
                .await?;
            if resp.succeeded() {
                let revision = resp.header().map(|h| h.revision()).ok_or_else(|| {
                    Error::Backend("etcd transaction answer without a header".into())
                })?;
                return Ok(ops.iter().map(|op| op_result(op, revision)).collect());
            }
            let seen = read_back(&resp, &plan.reads)?;
            if let Some(conflict) = first_conflict(&ops, &plan, &seen) {
                return Err(conflict);
            }
            // The caller's conditions hold: a parent is missing. Create it and try again.
            if plan.parents.is_empty() {
                return Err(Error::Backend(
                    "etcd refused a transaction whose conditions all hold".into(),
                ));
            }
            tracing::debug!(parents = ?plan.parents, "creating missing parents");
            self.shared.create_parents(&plan.parents).await?;
        }
        Err(Error::Backend(format!(
            "parents of the keys to create kept disappearing ({PARENT_ATTEMPTS} attempts)"
        )))
    }

    async fn watch(&self, key: &str) -> Result<Watch> {
        keys::validate(key)?;
        self.shared.alive()?;
        let (begin, end) = self.shared.subtree(key);
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        let task = WatchTask {
            shared: Arc::clone(&self.shared),
            key: key.to_owned(),
            begin,
            end,
            tx,
            overflowed: false,
        };
        let stream = self.shared.call("watch", task.open()).await?;
        tokio::spawn(task.run(stream));
        Ok(Watch::new(rx))
    }

    async fn close(&self) -> Result<()> {
        if self.shared.closed.send_replace(true) {
            return Ok(());
        }
        self.keep_alive.abort();
        if *self.shared.state.borrow() == SessionState::Expired {
            // Nothing to end; the keep-alive task already tried to revoke the lease.
            return Ok(());
        }
        tracing::info!(lease = self.shared.lease_id, "closing etcd session");
        self.shared.revoke().await
    }
}

/// Checks what the caller asks for against the key rules and [`LIMITS`].
fn check_ops(ops: &[Op]) -> Result<()> {
    if ops.len() > LIMITS.max_ops_per_txn {
        return Err(Error::TooLarge {
            what: "transaction",
            size: ops.len(),
            limit: LIMITS.max_ops_per_txn,
        });
    }
    let mut bytes = 0;
    for op in ops {
        keys::validate(op.key())?;
        if op.key() == "/" {
            return Err(Error::InvalidKey("/".into()));
        }
        if let Op::Create { value, .. } | Op::Set { value, .. } = op {
            if value.len() > LIMITS.max_value_bytes {
                return Err(Error::TooLarge {
                    what: "value",
                    size: value.len(),
                    limit: LIMITS.max_value_bytes,
                });
            }
        }
        bytes += op.size();
    }
    if bytes > LIMITS.max_txn_bytes {
        return Err(Error::TooLarge {
            what: "transaction bytes",
            size: bytes,
            limit: LIMITS.max_txn_bytes,
        });
    }
    Ok(())
}

/// A caller's transaction as etcd will see it.
struct TxnPlan {
    /// One compare per caller op, then one "exists" per parent checked.
    txn: Txn,
    /// The full keys the else branch reads, in order.
    reads: Vec<String>,
    /// The full keys of the caller's ops, by op.
    keys: Vec<String>,
    /// Ancestors to create (if absent) when a parent check fails, outermost first.
    parents: Vec<String>,
}

/// The ancestors a transaction's creates need (caller keys).
struct Parents<'a> {
    /// Below a key the transaction creates: written inside it (they cannot exist if it
    /// succeeds).
    inside: Vec<&'a str>,
    /// Created beforehand if missing, outermost first.
    outside: Vec<&'a str>,
    /// Direct parents of created keys that must exist when the transaction applies.
    checked: Vec<&'a str>,
}

impl<'a> Parents<'a> {
    fn of(ops: &'a [Op]) -> Parents<'a> {
        let created: Vec<&str> = ops
            .iter()
            .filter(|op| matches!(op, Op::Create { .. }))
            .map(Op::key)
            .collect();
        let mut parents = Parents {
            inside: Vec::new(),
            outside: Vec::new(),
            checked: Vec::new(),
        };
        let mut seen = HashSet::new();
        for key in &created {
            for ancestor in keys::ancestors(key) {
                if created.contains(&ancestor) || !seen.insert(ancestor) {
                    continue;
                }
                if keys::ancestors(ancestor)
                    .iter()
                    .any(|a| created.contains(a))
                {
                    parents.inside.push(ancestor);
                } else {
                    parents.outside.push(ancestor);
                }
            }
            // A parent that is created or written inside needs no check.
            if let Some(parent) = keys::parent(key) {
                if parents.outside.contains(&parent) && !parents.checked.contains(&parent) {
                    parents.checked.push(parent);
                }
            }
        }
        parents
    }
}

fn push_once(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|have| have == item) {
        list.push(item.to_owned());
    }
}

/// The compare that holds when a key exists at `version` (or at all, without one).
fn version_compare(full: &str, version: Option<Version>) -> Compare {
    match version {
        None => Compare::version(full, CompareOp::Greater, 0),
        Some(v) if v > 0 => Compare::mod_revision(full, CompareOp::Equal, v),
        // No key ever has a revision below 1; `mod_revision < 0` is never true, while
        // `mod_revision == 0` would hold for a missing key.
        Some(_) => Compare::mod_revision(full, CompareOp::Less, 0),
    }
}

impl Shared {
    /// The etcd key for a caller's key.
    fn full(&self, key: &str) -> String {
        match (key, self.prefix.is_empty()) {
            ("/", true) => "/".to_owned(),
            ("/", false) => self.prefix.clone(),
            _ => format!("{}{key}", self.prefix),
        }
    }

    /// The etcd prefix of a key's children.
    fn dir(&self, key: &str) -> String {
        if key == "/" {
            format!("{}/", self.prefix)
        } else {
            format!("{}{key}/", self.prefix)
        }
    }

    /// The caller's key for an etcd key, if it lies under the root.
    fn strip<'a>(&self, full: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            return full.starts_with('/').then_some(full);
        }
        match full.strip_prefix(self.prefix.as_str())? {
            "" => Some("/"),
            rest if rest.starts_with('/') => Some(rest),
            _ => None,
        }
    }

    /// The etcd range `[begin, end)` holding `key` and everything below it (and a few
    /// siblings such as `key-x`, which sort before `key/`; watchers filter them out).
    fn subtree(&self, key: &str) -> (String, String) {
        let begin = self.full(key);
        // '0' is the byte after '/'.
        let end = if begin == "/" {
            "0".to_owned()
        } else {
            format!("{begin}0")
        };
        (begin, end)
    }

    /// Translates a caller's (checked) transaction into one etcd Txn.
    fn plan(&self, ops: &[Op]) -> Result<TxnPlan> {
        let parents = Parents::of(ops);
        let mut compares = Vec::new();
        let mut writes = Vec::new();
        let mut reads: Vec<String> = Vec::new();
        let mut bytes = 0;
        let keys: Vec<String> = ops.iter().map(|op| self.full(op.key())).collect();
        for (op, full) in ops.iter().zip(&keys) {
            // The compare and the else branch's read name the key too.
            bytes += 2 * (full.len() + ETCD_OP_OVERHEAD);
            match op {
                Op::Create {
                    value, ephemeral, ..
                } => {
                    compares.push(Compare::create_revision(full.as_str(), CompareOp::Equal, 0));
                    let options = ephemeral.then(|| PutOptions::new().with_lease(self.lease_id));
                    writes.push(TxnOp::put(full.as_str(), value.clone(), options));
                    bytes += full.len() + value.len() + ETCD_OP_OVERHEAD;
                }
                Op::Set { value, version, .. } => {
                    compares.push(version_compare(full, *version));
                    let keep_lease = Some(PutOptions::new().with_ignore_lease());
                    writes.push(TxnOp::put(full.as_str(), value.clone(), keep_lease));
                    bytes += full.len() + value.len() + ETCD_OP_OVERHEAD;
                }
                Op::Delete { version, .. } => {
                    compares.push(version_compare(full, *version));
                    writes.push(TxnOp::delete(full.as_str(), None));
                    let below = Some(DeleteOptions::new().with_prefix());
                    writes.push(TxnOp::delete(format!("{full}/"), below));
                    bytes += 2 * (full.len() + ETCD_OP_OVERHEAD);
                }
                Op::Check { version, .. } => compares.push(version_compare(full, Some(*version))),
            }
            push_once(&mut reads, full);
        }
        for ancestor in &parents.inside {
            let full = self.full(ancestor);
            bytes += full.len() + ETCD_OP_OVERHEAD;
            writes.push(TxnOp::put(full, Vec::new(), None));
        }
        for parent in &parents.checked {
            let full = self.full(parent);
            bytes += 2 * (full.len() + ETCD_OP_OVERHEAD);
            compares.push(Compare::version(full.as_str(), CompareOp::Greater, 0));
            push_once(&mut reads, &full);
        }

        let most = compares.len().max(writes.len()).max(reads.len());
        if most > ETCD_MAX_TXN_OPS {
            return Err(Error::TooLarge {
                what: "etcd transaction operations",
                size: most,
                limit: ETCD_MAX_TXN_OPS,
            });
        }
        let max_bytes = ETCD_MAX_REQUEST_BYTES - 4096;
        if bytes > max_bytes {
            return Err(Error::TooLarge {
                what: "etcd request",
                size: bytes,
                limit: max_bytes,
            });
        }
        let keys_only = || Some(GetOptions::new().with_keys_only());
        let else_reads: Vec<TxnOp> = reads
            .iter()
            .map(|full| TxnOp::get(full.as_str(), keys_only()))
            .collect();
        Ok(TxnPlan {
            txn: Txn::new()
                .when(compares)
                .and_then(writes)
                .or_else(else_reads),
            reads,
            keys,
            parents: parents.outside.iter().map(|a| self.full(a)).collect(),
        })
    }

    /// Creates each of `parents` (full keys, outermost first) unless it exists, with
    /// empty values, in one request of nested create-if-absent transactions per chunk
    /// (a nested transaction's operations count against the outer one's budget).
    async fn create_parents(&self, parents: &[String]) -> Result<()> {
        for chunk in parents.chunks(ETCD_MAX_TXN_OPS / 2) {
            let creates: Vec<TxnOp> = chunk
                .iter()
                .map(|full| {
                    TxnOp::txn(
                        Txn::new()
                            .when([Compare::create_revision(full.as_str(), CompareOp::Equal, 0)])
                            .and_then([TxnOp::put(full.as_str(), Vec::new(), None)]),
                    )
                })
                .collect();
            self.call(
                "create parents",
                self.kv.clone().txn(Txn::new().and_then(creates)),
            )
            .await?;
        }
        Ok(())
    }

    /// Fails unless the client may still be used.
    fn alive(&self) -> Result<()> {
        if *self.closed.borrow() {
            return Err(Error::Closed);
        }
        if *self.state.borrow() == SessionState::Expired {
            return Err(Error::SessionExpired);
        }
        Ok(())
    }

    /// Runs one etcd request, bounded by the request timeout, with its error mapped.
    async fn call<T>(
        &self,
        op: &'static str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        self.alive()?;
        match tokio::time::timeout(self.request_timeout, request).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                let error = from_etcd(e);
                if matches!(error, Error::SessionExpired) {
                    self.expire("etcd no longer knows the session's lease");
                }
                Err(error)
            }
            Err(_) => Err(Error::Timeout {
                op,
                after: self.request_timeout,
            }),
        }
    }

    /// Revokes the lease: the session's ephemeral keys go at once.
    async fn revoke(&self) -> Result<()> {
        let mut lease = self.lease.clone();
        match tokio::time::timeout(self.request_timeout, lease.revoke(self.lease_id)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => match from_etcd(e) {
                Error::SessionExpired => Ok(()),
                other => {
                    tracing::warn!(lease = self.lease_id, error = %other, "cannot revoke the lease; it ends by its TTL");
                    Err(other)
                }
            },
            Err(_) => Err(Error::Timeout {
                op: "revoke lease",
                after: self.request_timeout,
            }),
        }
    }

    fn connected(&self) {
        let changed = self.state.send_if_modified(|s| {
            let was = *s == SessionState::Suspended;
            if was {
                *s = SessionState::Connected;
            }
            was
        });
        if changed {
            tracing::info!(lease = self.lease_id, "etcd session reconnected");
        }
    }

    fn suspend(&self, reason: &str) {
        let changed = self.state.send_if_modified(|s| {
            let was = *s == SessionState::Connected;
            if was {
                *s = SessionState::Suspended;
            }
            was
        });
        if changed {
            tracing::warn!(lease = self.lease_id, reason, "etcd session suspended");
        }
    }

    fn expire(&self, reason: &str) {
        let changed = self.state.send_if_modified(|s| {
            let was = *s != SessionState::Expired;
            *s = SessionState::Expired;
            was
        });
        if changed {
            tracing::warn!(lease = self.lease_id, reason, "etcd session expired");
        }
    }
}

fn op_result(op: &Op, revision: i64) -> OpResult {
    match op {
        Op::Create { .. } | Op::Set { .. } => OpResult::Written(revision),
        Op::Delete { .. } => OpResult::Deleted,
        Op::Check { .. } => OpResult::Checked,
    }
}

/// The mod_revision (or absence) of each key the else branch of a failed Txn read.
fn read_back(resp: &TxnResponse, reads: &[String]) -> Result<Vec<Option<i64>>> {
    let answers = resp.op_responses();
    if answers.len() != reads.len() {
        return Err(Error::Backend(format!(
            "etcd answered {} of {} reads",
            answers.len(),
            reads.len()
        )));
    }
    Ok(answers
        .iter()
        .map(|answer| match answer {
            TxnOpResponse::Get(read) => read.kvs().first().map(|kv| kv.mod_revision()),
            _ => None,
        })
        .collect())
}

/// The first caller op whose condition fails in the snapshot `seen` (by `plan.reads`).
fn first_conflict(ops: &[Op], plan: &TxnPlan, seen: &[Option<i64>]) -> Option<Error> {
    for (index, (op, full)) in ops.iter().zip(&plan.keys).enumerate() {
        let revision = plan
            .reads
            .iter()
            .position(|r| r == full)
            .and_then(|i| seen.get(i).copied().flatten());
        let expected = match op {
            Op::Create { .. } => {
                if revision.is_some() {
                    return Some(conflict(index, op, ConflictKind::Exists));
                }
                continue;
            }
            Op::Set { version, .. } | Op::Delete { version, .. } => *version,
            Op::Check { version, .. } => Some(*version),
        };
        match (revision, expected) {
            (None, _) => return Some(conflict(index, op, ConflictKind::Missing)),
            (Some(have), Some(want)) if have != want => {
                return Some(conflict(index, op, ConflictKind::VersionMismatch))
            }
            _ => {}
        }
    }
    None
}

fn conflict(index: usize, op: &Op, kind: ConflictKind) -> Error {
    Error::Conflict {
        index,
        key: op.key().to_owned(),
        kind,
    }
}

/// Maps an `etcd-client` error: connection trouble is retriable, a lost lease is the
/// session's end, the rest is the backend's.
fn from_etcd(error: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    match error {
        E::GRpcStatus(status) => {
            let message = status.message();
            // gRPC codes: 1 cancelled, 2 unknown, 4 deadline exceeded, 5 not found,
            // 8 resource exhausted, 10 aborted, 14 unavailable.
            match i32::from(status.code()) {
                5 if message.contains("lease not found") => Error::SessionExpired,
                1 | 4 | 10 | 14 => Error::ConnectionLoss(message.to_owned()),
                8 if message.contains("too many requests") => {
                    Error::ConnectionLoss(message.to_owned())
                }
                2 if ["transport", "connect", "connection", "h2", "broken pipe"]
                    .iter()
                    .any(|w| message.contains(w)) =>
                {
                    Error::ConnectionLoss(message.to_owned())
                }
                _ => Error::Backend(format!("etcd: {message}")),
            }
        }
        E::TransportError(e) => Error::ConnectionLoss(e.to_string()),
        E::IoError(e) => Error::ConnectionLoss(e.to_string()),
        E::LeaseKeepAliveError(message) if message.contains("not found") => Error::SessionExpired,
        E::LeaseKeepAliveError(message) | E::WatchError(message) => Error::ConnectionLoss(message),
        other => Error::Backend(other.to_string()),
    }
}

/// How one keep-alive stream ended.
enum KeepAliveEnd {
    /// etcd says the lease is gone.
    LeaseGone,
    /// The stream broke or went quiet.
    Broken(String),
}

/// The session's keep-alive task: renews the lease every TTL/3 and drives the session
/// state. Ends when the client is closed or the session expired.
async fn keep_alive(shared: Arc<Shared>, granted_at: Instant) {
    let interval = (shared.ttl / 3).max(Duration::from_millis(100));
    let mut closed = shared.closed.subscribe();
    let mut last_renewed = granted_at;
    loop {
        let end = tokio::select! {
            _ = closed.wait_for(|c| *c) => return,
            end = keep_alive_stream(&shared, interval, &mut last_renewed) => end,
        };
        match end {
            KeepAliveEnd::LeaseGone => {
                shared.expire("etcd says the lease is gone");
                return;
            }
            KeepAliveEnd::Broken(reason) => {
                shared.suspend(&reason);
                if last_renewed.elapsed() >= shared.ttl {
                    shared.expire("no keep-alive answered within the session TTL");
                    // If etcd still holds the lease (it restarted and extended it), end it
                    // so its ephemeral keys go as this side already reports.
                    let _ = shared.revoke().await;
                    return;
                }
            }
        }
        // Retry soon, but not in a tight loop against a refusing server.
        let pause = (interval / 4).min(shared.ttl.saturating_sub(last_renewed.elapsed()));
        tokio::select! {
            _ = closed.wait_for(|c| *c) => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Opens a keep-alive stream and renews the lease on it until it breaks. Every wait is
/// bounded by `interval`, so the caller sees a lost connection within two intervals.
async fn keep_alive_stream(
    shared: &Shared,
    interval: Duration,
    last_renewed: &mut Instant,
) -> KeepAliveEnd {
    let classify = |e: etcd_client::Error| match from_etcd(e) {
        Error::SessionExpired => KeepAliveEnd::LeaseGone,
        other => KeepAliveEnd::Broken(other.to_string()),
    };
    let sent = Instant::now();
    // Opening sends the first keep-alive and waits for its answer (TTL 0: lease gone).
    let (mut keeper, mut stream) = match tokio::time::timeout(
        interval,
        shared.lease.clone().keep_alive(shared.lease_id),
    )
    .await
    {
        Err(_) => return KeepAliveEnd::Broken("no answer to a keep-alive".into()),
        Ok(Err(e)) => return classify(e),
        Ok(Ok(opened)) => opened,
    };
    *last_renewed = sent;
    shared.connected();
    loop {
        // Between keep-alives only a broken stream has anything to say: notice it now.
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            message = stream.message() => return match message {
                Err(e) => classify(e),
                Ok(None) => KeepAliveEnd::Broken("keep-alive stream ended".into()),
                Ok(Some(_)) => KeepAliveEnd::Broken("unasked keep-alive answer".into()),
            },
        }
        let sent = Instant::now();
        if let Err(e) = keeper.keep_alive().await {
            return classify(e);
        }
        match tokio::time::timeout(interval, stream.message()).await {
            Err(_) => return KeepAliveEnd::Broken("no answer to a keep-alive".into()),
            Ok(Err(e)) => return classify(e),
            Ok(Ok(None)) => return KeepAliveEnd::Broken("keep-alive stream ended".into()),
            Ok(Ok(Some(answer))) if answer.ttl() <= 0 => return KeepAliveEnd::LeaseGone,
            Ok(Ok(Some(_))) => {
                *last_renewed = sent;
                shared.connected();
            }
        }
    }
}

/// What to do after a watch response.
enum Next {
    Continue,
    /// Re-create the watch from now, then send a Resync.
    Restart,
    /// The receiver is gone.
    Stop,
}

/// One watch: reads the etcd stream, filters and forwards events, re-creates the
/// stream when it breaks.
struct WatchTask {
    shared: Arc<Shared>,
    /// The caller's key.
    key: String,
    begin: String,
    end: String,
    tx: mpsc::Sender<WatchEvent>,
    /// Events were dropped for a full queue; a Resync is owed.
    overflowed: bool,
}

impl WatchTask {
    /// Creates the etcd watch from the current revision and waits until etcd confirms it.
    async fn open(&self) -> Result<WatchStream, etcd_client::Error> {
        let options = WatchOptions::new().with_range(self.end.as_str());
        let mut stream = self
            .shared
            .watch
            .clone()
            .watch(self.begin.as_str(), Some(options))
            .await?;
        match stream.message().await? {
            Some(resp) if resp.created() && !resp.canceled() => Ok(stream),
            Some(resp) => Err(etcd_client::Error::WatchError(format!(
                "watch not created: {}",
                resp.cancel_reason()
            ))),
            None => Err(etcd_client::Error::WatchError(
                "watch stream ended before it was created".into(),
            )),
        }
    }

    async fn run(mut self, mut stream: WatchStream) {
        let mut closed = self.shared.closed.subscribe();
        let mut state = self.shared.state.subscribe();
        loop {
            let message = tokio::select! {
                _ = closed.wait_for(|c| *c) => return,
                _ = state.wait_for(|s| *s == SessionState::Expired) => return,
                () = self.tx.closed() => return,
                permit = self.tx.reserve(), if self.overflowed => {
                    let Ok(permit) = permit else { return };
                    permit.send(WatchEvent::Resync);
                    self.overflowed = false;
                    continue;
                }
                message = stream.message() => message,
            };
            let next = match message {
                Ok(Some(resp)) => self.handle(&resp),
                Ok(None) => Next::Restart,
                Err(e) => {
                    tracing::debug!(key = %self.key, error = %e, "etcd watch stream broke");
                    Next::Restart
                }
            };
            match next {
                Next::Continue => {}
                Next::Stop => return,
                Next::Restart => match self.reopen().await {
                    Some(reopened) => stream = reopened,
                    None => return,
                },
            }
        }
    }

    fn handle(&mut self, resp: &WatchResponse) -> Next {
        if resp.canceled() {
            tracing::warn!(
                key = %self.key,
                reason = resp.cancel_reason(),
                compacted = resp.compact_revision(),
                "etcd cancelled a watch; re-creating it"
            );
            return Next::Restart;
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let Some(key) = kv.key_str().ok().and_then(|full| self.shared.strip(full)) else {
                continue;
            };
            if !keys::is_at_or_below(key, &self.key) {
                continue;
            }
            let event = match event.event_type() {
                EventType::Put => WatchEvent::Put {
                    key: key.to_owned(),
                    value: kv.value().to_vec(),
                    version: kv.mod_revision(),
                },
                EventType::Delete => WatchEvent::Delete {
                    key: key.to_owned(),
                },
            };
            if !self.send(event) {
                return Next::Stop;
            }
        }
        Next::Continue
    }

    /// Queues an event; on a full queue drops it and owes a Resync. False once the
    /// receiver is gone.
    fn send(&mut self, event: WatchEvent) -> bool {
        if self.overflowed {
            return !self.tx.is_closed();
        }
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(key = %self.key, "watch queue full; dropping events until a Resync fits");
                self.overflowed = true;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Re-creates the watch from now, retrying until it works, then queues a Resync;
    /// None when the watch should end instead.
    async fn reopen(&mut self) -> Option<WatchStream> {
        let mut closed = self.shared.closed.subscribe();
        let mut state = self.shared.state.subscribe();
        let mut pause = Duration::from_millis(50);
        loop {
            let attempt = tokio::time::timeout(self.shared.request_timeout, self.open());
            let opened = tokio::select! {
                _ = closed.wait_for(|c| *c) => return None,
                _ = state.wait_for(|s| *s == SessionState::Expired) => return None,
                () = self.tx.closed() => return None,
                opened = attempt => opened,
            };
            match opened {
                Ok(Ok(stream)) => {
                    tracing::debug!(key = %self.key, "etcd watch re-created; resyncing");
                    return self.send(WatchEvent::Resync).then_some(stream);
                }
                Ok(Err(e)) => {
                    tracing::debug!(key = %self.key, error = %e, "cannot re-create etcd watch yet")
                }
                Err(_) => tracing::debug!(key = %self.key, "re-creating etcd watch timed out"),
            }
            // Try again after a pause, or as soon as the session reconnects.
            tokio::select! {
                _ = closed.wait_for(|c| *c) => return None,
                _ = state.changed() => {}
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}
