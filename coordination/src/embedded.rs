//! The embedded backend: an in-process coordination store persisted with sled, shared by
//! every client (broker) of one process. The default backend: one command runs a broker,
//! with no external service.
//!
//! An [`EmbeddedStore`] owns the keys, the sessions and the watches; an [`EmbeddedClient`]
//! is one session on it under one root. Roots are separate namespaces: a key is stored as
//! (root, key), so clients with different roots never see each other's keys, even when
//! one root is a prefix of the other (unlike a ZooKeeper chroot).
//!
//! ## Versions
//! One store-wide revision counter, persisted with every transaction: each write takes
//! the next revision as the key's version, so versions are strictly increasing across the
//! store and across restarts, and a deleted and re-created key never gets an old version
//! back.
//!
//! ## The root key
//! `/` is the namespace itself, not a key: it never exists ([`Coordination::get`] returns
//! `None`, Set/Delete/Check fail with [`ConflictKind::Missing`], Create is
//! [`Error::InvalidKey`]), its children are the top-level keys, and watching it watches
//! everything in the namespace.
//!
//! ## Sessions
//! A session lasts until its client is closed or dropped, [`EmbeddedStore::expire_session`]
//! ends it, or the process exits. In one process a session cannot lose its connection,
//! so it is never `Suspended` and its timeout never runs out. Ephemeral keys are never
//! written to disk: after a restart they are gone, as their sessions are. As in
//! ZooKeeper, ephemeral keys have no children: creating any key below one is refused.
//!
//! ## On-disk format
//! One sled tree (the default tree) in `dir/coordination`:
//! - `root 0x00 key` → `[layout: u16 BE = 1][version: i64 BE][value bytes]`, one per
//!   persistent key. Roots and keys are valid paths (they start with `/` and hold no
//!   NUL), so the first NUL separates them.
//! - `0x00 "format"` → the layout version, u16 BE (1). A directory with another layout
//!   is refused.
//! - `0x00 "revision"` → the last revision handed out, i64 BE.
//!
//! ## Crash behaviour
//! Every transaction is one sled batch (atomic on recovery), flushed to disk before it
//! becomes visible to any client or watcher and before it is acknowledged: what anyone
//! saw survives a crash, and the store recovers to a prefix of the transactions (a
//! [temporary](EmbeddedStore::temporary) store skips the flush: it does not outlive the
//! process anyway). An entry
//! that does not decode makes [`EmbeddedStore::open`] fail with [`Error::Codec`] naming
//! it. If a write to sled fails, memory and disk may disagree, so the store refuses every
//! later write (reads go on); reopen it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

use crate::{
    codec, keys, ConflictKind, Coordination, Error, Limits, Op, OpResult, Result, SessionState,
    Version, Versioned, Watch, WatchEvent, WATCH_QUEUE,
};

/// What one transaction may hold. Generous, since everything stays in one process, but
/// bounded so that one request cannot hold the store's lock (or its memory) for long.
const LIMITS: Limits = Limits {
    max_ops_per_txn: 10_000,
    max_txn_bytes: 16 << 20,
    max_value_bytes: codec::MAX_VALUE_BYTES,
};

/// The sled database's directory inside the directory given to [`EmbeddedStore::open`].
pub const STORE_DIR: &str = "coordination";

/// How long [`EmbeddedStore::open`] waits for sled's lock on the directory.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// sled's page cache. Every key is also held in memory, so sled needs little.
const CACHE_BYTES: u64 = 64 << 20;

/// The on-disk layout this build reads and writes.
const LAYOUT_VERSION: u16 = 1;
const META_FORMAT: &[u8] = b"\0format";
const META_REVISION: &[u8] = b"\0revision";
/// Layout version + key version in front of every stored value.
const ENTRY_HEADER: usize = 2 + 8;

/// The shared store: keys by root, sessions, watches, and the sled database.
///
/// Thread-safe; shared as `Arc<EmbeddedStore>` by its clients. Only one store may have a
/// directory open at a time (sled locks it): share one store between the clients of a
/// process instead of opening the directory again.
pub struct EmbeddedStore {
    db: sled::Db,
    /// Where the database lives; `None` for a temporary store.
    path: Option<PathBuf>,
    /// Whether a transaction is flushed to disk before it is acknowledged. Off for a
    /// temporary store, which is deleted when dropped anyway.
    durable: bool,
    /// Serialises writers — transactions and session ends — from planning a change to
    /// applying it, so a transaction is applied to exactly the state it was planned
    /// against, although that state lock is released while sled writes. Held across the
    /// sled write and flush: only writers ever wait for it. Always taken before `state`.
    commit: Mutex<()>,
    /// The live view. A std mutex, not tokio's: every section holding it is short,
    /// CPU-only work (no `.await`, no disk I/O), and it is also taken from `Drop` and from
    /// the synchronous [`EmbeddedStore::expire_session`], which cannot await a lock.
    state: Mutex<State>,
}

/// Everything the store knows, in memory.
#[derive(Debug, Default)]
struct State {
    namespaces: HashMap<String, Namespace>,
    /// The last revision handed out as a version.
    revision: Version,
    /// Live sessions; a session absent from here has ended.
    sessions: HashMap<u64, Session>,
    /// The last session id handed out.
    last_session: u64,
    /// Why the store refuses writes, once a sled write has failed.
    failed: Option<String>,
}

/// One root's keys and watches.
#[derive(Debug, Default)]
struct Namespace {
    entries: BTreeMap<String, Entry>,
    watchers: Vec<Watcher>,
}

/// A key's value.
#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    version: Version,
    /// The session an ephemeral key belongs to; `None` for a persistent key.
    owner: Option<u64>,
}

/// A live session.
#[derive(Debug)]
struct Session {
    root: String,
    state: watch::Sender<SessionState>,
}

/// One watch: where it looks and where its events go.
#[derive(Debug)]
struct Watcher {
    prefix: String,
    session: u64,
    events: mpsc::Sender<WatchEvent>,
    /// The last thing queued is a Resync, and the events since were dropped.
    resync_queued: bool,
}

impl EmbeddedStore {
    /// Opens (creating it if needed) the store persisted in `dir/coordination` and loads
    /// every persistent key.
    ///
    /// sled locks the directory, and its background threads may hold the lock a moment
    /// after the previous store in this process was dropped; so a locked directory is
    /// retried (blocking) for up to [`LOCK_WAIT`] before failing. A directory held by
    /// another process fails the same way, after the same wait.
    pub fn open(dir: &Path) -> Result<Arc<EmbeddedStore>> {
        let path = dir.join(STORE_DIR);
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::Backend(format!("cannot create {}: {e}", path.display())))?;
        let config = sled::Config::new().path(&path).cache_capacity(CACHE_BYTES);
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    return Err(Error::Backend(format!(
                        "cannot open the embedded store in {}: {e}",
                        path.display()
                    )))
                }
            }
        };
        let store = EmbeddedStore::load(db, Some(path), true)?;
        tracing::info!(path = ?store.path, "embedded coordination store opened");
        Ok(store)
    }

    /// A store in a temporary directory (in memory on Linux), deleted when dropped. Writes
    /// are not flushed, since nothing survives the store anyway.
    pub fn temporary() -> Result<Arc<EmbeddedStore>> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| Error::Backend(format!("cannot open a temporary embedded store: {e}")))?;
        EmbeddedStore::load(db, None, false)
    }

    /// Reads every record of `db` into memory.
    fn load(db: sled::Db, path: Option<PathBuf>, durable: bool) -> Result<Arc<EmbeddedStore>> {
        let mut state = State::default();
        let mut format = None;
        let mut keys_loaded = 0usize;
        for item in db.iter() {
            let (k, v) =
                item.map_err(|e| Error::Backend(format!("cannot read the embedded store: {e}")))?;
            match decode_record(&k, &v)? {
                Record::Format(f) => format = Some(f),
                Record::Revision(r) => state.revision = state.revision.max(r),
                Record::Entry { root, key, entry } => {
                    state.revision = state.revision.max(entry.version);
                    state
                        .namespaces
                        .entry(root)
                        .or_default()
                        .entries
                        .insert(key, entry);
                    keys_loaded += 1;
                }
            }
        }
        match format {
            Some(LAYOUT_VERSION) => {}
            Some(other) => {
                return Err(Error::Codec(format!(
                    "embedded store layout {other} is not known to this build (it writes {LAYOUT_VERSION})"
                )))
            }
            None if keys_loaded > 0 => {
                return Err(Error::Codec("embedded store has keys but no format marker".into()));
            }
            None => {
                db.insert(META_FORMAT, &LAYOUT_VERSION.to_be_bytes())
                    .and_then(|_| db.flush())
                    .map_err(|e| Error::Backend(format!("cannot initialise the embedded store: {e}")))?;
            }
        }
        tracing::debug!(
            keys = keys_loaded,
            revision = state.revision,
            "embedded store loaded"
        );
        Ok(Arc::new(EmbeddedStore {
            db,
            path,
            durable,
            commit: Mutex::new(()),
            state: Mutex::new(state),
        }))
    }

    /// A new client with its own session, seeing the keys under `root` (an absolute path).
    /// The session lasts until the client is closed or dropped or the session is expired;
    /// in one process it cannot time out, so `session_timeout` is only reported.
    pub fn connect(
        self: &Arc<Self>,
        root: &str,
        session_timeout: Duration,
    ) -> Result<EmbeddedClient> {
        keys::validate(root)
            .map_err(|_| Error::Config(format!("root {root:?} is not an absolute path")))?;
        let (tx, rx) = watch::channel(SessionState::Connected);
        let session_id = {
            let mut state = self.lock_state()?;
            state.last_session += 1;
            let id = state.last_session;
            state.sessions.insert(
                id,
                Session {
                    root: root.to_owned(),
                    state: tx,
                },
            );
            id
        };
        tracing::debug!(session = session_id, root, "embedded session opened");
        Ok(EmbeddedClient {
            store: Arc::clone(self),
            root: root.to_owned(),
            session_id,
            session_timeout,
            state: rx,
            closed: AtomicBool::new(false),
        })
    }

    /// Ends a session as if it had timed out (ZooKeeper's admin expiry): its state goes to
    /// `Expired`, its ephemeral keys are deleted (other watchers see the Deletes), its own
    /// watches end, and its client's later calls fail with [`Error::SessionExpired`].
    /// Unknown or ended sessions are ignored. Blocks while a transaction is being written
    /// (one disk flush at most).
    pub fn expire_session(&self, session_id: u64) {
        match self.end_session(session_id) {
            Ok(true) => tracing::warn!(session = session_id, "embedded session expired by request"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(session = session_id, error = %e, "cannot expire embedded session")
            }
        }
    }

    fn lock_state(&self) -> Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::Backend("embedded store poisoned by an earlier panic".into()))
    }

    fn lock_commit(&self) -> Result<MutexGuard<'_, ()>> {
        self.commit
            .lock()
            .map_err(|_| Error::Backend("embedded store poisoned by an earlier panic".into()))
    }

    /// Ends a session now, if it is live: see [`EmbeddedStore::expire_session`].
    /// Returns whether it was live.
    fn end_session(&self, session_id: u64) -> Result<bool> {
        if !self.lock_state()?.sessions.contains_key(&session_id) {
            return Ok(false);
        }
        // As a writer: a transaction in flight was planned with this session's ephemeral
        // keys in place, so it is applied first.
        let _commit = self.lock_commit()?;
        Ok(self.lock_state()?.end_session(session_id))
    }

    /// Applies one transaction for `session` under `root`: plan it against the live
    /// state, write it to sled, then make it visible and tell the watchers. Blocking (the
    /// flush): run it off the async workers.
    fn commit(&self, root: &str, session: u64, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        let _commit = self.lock_commit()?;
        let plan = {
            let state = self.lock_state()?;
            if let Some(why) = &state.failed {
                return Err(Error::Backend(format!(
                    "embedded store refuses writes after a failed write: {why}"
                )));
            }
            state.check_session(session)?;
            let entries = state.namespaces.get(root).map(|ns| &ns.entries);
            Planner::new(entries, state.revision, session).plan(ops)?
        };
        if plan.changes.is_empty() {
            return Ok(plan.results);
        }
        if let Err(e) = self.persist(root, &plan) {
            tracing::error!(error = %e, "embedded store write failed; refusing further writes");
            self.lock_state()?.failed = Some(e.to_string());
            return Err(e);
        }
        let mut state = self.lock_state()?;
        state.revision = plan.revision;
        state
            .namespaces
            .entry(root.to_owned())
            .or_default()
            .apply(plan.changes);
        Ok(plan.results)
    }

    /// Writes a planned transaction's persistent changes and the new revision as one sled
    /// batch, and flushes it if the store is durable.
    fn persist(&self, root: &str, plan: &Plan) -> Result<()> {
        let mut batch = sled::Batch::default();
        for change in &plan.changes {
            let key = disk_key(root, &change.key);
            match &change.entry {
                Some(e) if e.owner.is_none() => batch.insert(key, encode_entry(e)),
                // Ephemeral keys are not stored. A stored key of the same name deleted
                // earlier in this transaction is removed by that deletion's change (a
                // batch keeps the last write of each key).
                Some(_) => {}
                None => batch.remove(key),
            }
        }
        batch.insert(META_REVISION, &plan.revision.to_be_bytes());
        self.db
            .apply_batch(batch)
            .map_err(|e| Error::Backend(format!("cannot write the embedded store: {e}")))?;
        if self.durable {
            self.db
                .flush()
                .map_err(|e| Error::Backend(format!("cannot flush the embedded store: {e}")))?;
        }
        Ok(())
    }
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl State {
    /// [`Error::SessionExpired`] unless `session` is live.
    fn check_session(&self, session: u64) -> Result<()> {
        if self.sessions.contains_key(&session) {
            Ok(())
        } else {
            Err(Error::SessionExpired)
        }
    }

    /// Forgets a session: its watches end, its ephemeral keys go (watchers see a Delete
    /// for each), and its state becomes `Expired`.
    fn end_session(&mut self, session_id: u64) -> bool {
        let Some(session) = self.sessions.remove(&session_id) else {
            return false;
        };
        if let Some(ns) = self.namespaces.get_mut(&session.root) {
            // Dropping the senders ends the watches once their queues are drained.
            ns.watchers.retain(|w| w.session != session_id);
            let gone: Vec<Change> = ns
                .entries
                .iter()
                .filter(|(_, e)| e.owner == Some(session_id))
                .map(|(k, _)| Change {
                    key: k.clone(),
                    entry: None,
                })
                .collect();
            tracing::debug!(
                session = session_id,
                ephemeral_keys = gone.len(),
                "embedded session ended"
            );
            ns.apply(gone);
        }
        session.state.send_replace(SessionState::Expired);
        true
    }
}

impl Namespace {
    /// Makes committed changes visible, then queues their events, in order, for every
    /// watcher they concern. Called with the state lock held, so no two transactions'
    /// events can interleave.
    fn apply(&mut self, changes: Vec<Change>) {
        let mut events = Vec::with_capacity(changes.len());
        for Change { key, entry } in changes {
            match entry {
                Some(e) => {
                    events.push(WatchEvent::Put {
                        key: key.clone(),
                        value: e.value.clone(),
                        version: e.version,
                    });
                    self.entries.insert(key, e);
                }
                None => {
                    self.entries.remove(&key);
                    events.push(WatchEvent::Delete { key });
                }
            }
        }
        if events.is_empty() {
            return;
        }
        self.watchers.retain_mut(|w| {
            !w.events.is_closed()
                && events.iter().all(|ev| match event_key(ev) {
                    Some(key) if keys::is_at_or_below(key, &w.prefix) => w.offer(ev),
                    _ => true,
                })
        });
    }

    /// The direct children of `key`, sorted by name. Skips each child's subtree rather
    /// than walking it, so the cost follows the number of children.
    fn children(&self, key: &str) -> Vec<(String, Versioned)> {
        let prefix = if key == "/" {
            "/".to_owned()
        } else {
            format!("{key}/")
        };
        let mut out = Vec::new();
        let mut from = Bound::Included(prefix.clone());
        while let Some((k, e)) = self.entries.range((from.clone(), Bound::Unbounded)).next() {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            match rest.find('/') {
                None => {
                    out.push((rest.to_owned(), versioned(e)));
                    from = Bound::Excluded(k.clone());
                }
                // A grandchild: jump past the child's subtree ('0' follows '/').
                Some(i) => from = Bound::Included(format!("{prefix}{}0", &rest[..i])),
            }
        }
        out
    }
}

impl Watcher {
    /// Queues `event` without ever blocking. One slot of the queue is kept for a Resync:
    /// when only that slot is left, the Resync takes it and later events are dropped
    /// until the reader makes room. They are covered by the Resync — while events are
    /// being dropped the Resync is still unread, so the reader re-reads after them.
    /// Returns false once the reader is gone.
    fn offer(&mut self, event: &WatchEvent) -> bool {
        if self.events.capacity() > 1 {
            self.resync_queued = false;
            return self.send(event.clone());
        }
        if self.resync_queued {
            return !self.events.is_closed();
        }
        self.resync_queued = true;
        self.send(WatchEvent::Resync)
    }

    fn send(&self, event: WatchEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            // Cannot happen: the store is this queue's only sender and checked for room
            // with the lock held; the reader only makes more. Were it to, ending the
            // watch is loud where dropping the event would be silent.
            Err(TrySendError::Full(_)) => {
                tracing::error!(prefix = %self.prefix, "watch queue full despite room; ending the watch");
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

fn event_key(event: &WatchEvent) -> Option<&str> {
    match event {
        WatchEvent::Put { key, .. } | WatchEvent::Delete { key } => Some(key),
        WatchEvent::Resync => None,
    }
}

fn versioned(e: &Entry) -> Versioned {
    Versioned {
        value: e.value.clone(),
        version: e.version,
    }
}

/// One key's new state in a transaction: `None` deletes it.
#[derive(Debug)]
struct Change {
    key: String,
    entry: Option<Entry>,
}

/// A transaction worked out against the state, not yet applied.
#[derive(Debug)]
struct Plan {
    /// Every key written or deleted, in order (a key may appear more than once).
    changes: Vec<Change>,
    results: Vec<OpResult>,
    /// The last revision the transaction handed out.
    revision: Version,
}

/// Works out a transaction's changes against a namespace without touching it: later
/// operations see earlier ones through an overlay.
struct Planner<'a> {
    base: Option<&'a BTreeMap<String, Entry>>,
    /// Keys the transaction wrote (`Some`) or deleted (`None`) so far.
    overlay: BTreeMap<String, Option<Entry>>,
    changes: Vec<Change>,
    revision: Version,
    session: u64,
}

impl<'a> Planner<'a> {
    fn new(
        base: Option<&'a BTreeMap<String, Entry>>,
        revision: Version,
        session: u64,
    ) -> Planner<'a> {
        Planner {
            base,
            overlay: BTreeMap::new(),
            changes: Vec::new(),
            revision,
            session,
        }
    }

    /// Checks the request as a whole, then plans each operation in turn; the first that
    /// fails fails the transaction.
    fn plan(mut self, ops: Vec<Op>) -> Result<Plan> {
        check_request(&ops)?;
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.into_iter().enumerate() {
            results.push(self.op(index, op)?);
        }
        Ok(Plan {
            changes: self.changes,
            results,
            revision: self.revision,
        })
    }

    fn op(&mut self, index: usize, op: Op) -> Result<OpResult> {
        match op {
            Op::Create {
                key,
                value,
                ephemeral,
            } => {
                if key == "/" {
                    return Err(Error::InvalidKey(key));
                }
                if self.lookup(&key).is_some() {
                    return Err(Error::Conflict {
                        index,
                        key,
                        kind: ConflictKind::Exists,
                    });
                }
                for ancestor in keys::ancestors(&key) {
                    match self.lookup(ancestor) {
                        Some(e) if e.owner.is_some() => {
                            return Err(Error::Backend(format!(
                                "operation {index}: cannot create {key} below the ephemeral key {ancestor}"
                            )));
                        }
                        Some(_) => {}
                        None => {
                            self.write(ancestor.to_owned(), Vec::new(), None);
                        }
                    }
                }
                let owner = ephemeral.then_some(self.session);
                Ok(OpResult::Written(self.write(key, value, owner)))
            }
            Op::Set {
                key,
                value,
                version,
            } => {
                // An ephemeral key stays bound to its session, whoever writes it.
                let owner = self.expect(index, &key, version)?.owner;
                Ok(OpResult::Written(self.write(key, value, owner)))
            }
            Op::Delete { key, version } => {
                self.expect(index, &key, version)?;
                // Children before their parent: reverse key order puts every key after
                // all of its descendants.
                for below in self.descendants(&key).into_iter().rev() {
                    self.remove(below);
                }
                self.remove(key);
                Ok(OpResult::Deleted)
            }
            Op::Check { key, version } => {
                self.expect(index, &key, Some(version))?;
                Ok(OpResult::Checked)
            }
        }
    }

    /// The key as the transaction sees it so far.
    fn lookup(&self, key: &str) -> Option<&Entry> {
        match self.overlay.get(key) {
            Some(entry) => entry.as_ref(),
            None => self.base.and_then(|b| b.get(key)),
        }
    }

    /// The key, which must exist at `version` if given.
    fn expect(&self, index: usize, key: &str, version: Option<Version>) -> Result<&Entry> {
        let conflict = |kind| Error::Conflict {
            index,
            key: key.to_owned(),
            kind,
        };
        let entry = self
            .lookup(key)
            .ok_or_else(|| conflict(ConflictKind::Missing))?;
        match version {
            Some(v) if v != entry.version => Err(conflict(ConflictKind::VersionMismatch)),
            _ => Ok(entry),
        }
    }

    /// Every existing key strictly below `key`, in key order.
    fn descendants(&self, key: &str) -> BTreeSet<String> {
        let bounds = subtree(key);
        let mut out: BTreeSet<String> = self
            .base
            .into_iter()
            .flat_map(|b| b.range(bounds.clone()))
            .filter(|(k, _)| !self.overlay.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        out.extend(
            self.overlay
                .range(bounds)
                .filter(|(_, e)| e.is_some())
                .map(|(k, _)| k.clone()),
        );
        out
    }

    fn write(&mut self, key: String, value: Vec<u8>, owner: Option<u64>) -> Version {
        self.revision += 1;
        let entry = Entry {
            value,
            version: self.revision,
            owner,
        };
        self.overlay.insert(key.clone(), Some(entry.clone()));
        self.changes.push(Change {
            key,
            entry: Some(entry),
        });
        self.revision
    }

    fn remove(&mut self, key: String) {
        self.overlay.insert(key.clone(), None);
        self.changes.push(Change { key, entry: None });
    }
}

/// The range of keys strictly below `key`: `key/` up to `key0` (`0` follows `/`).
fn subtree(key: &str) -> (Bound<String>, Bound<String>) {
    if key == "/" {
        (Bound::Excluded("/".to_owned()), Bound::Unbounded)
    } else {
        (
            Bound::Included(format!("{key}/")),
            Bound::Excluded(format!("{key}0")),
        )
    }
}

/// Refuses a request over [`LIMITS`] or with an invalid key, before anything is planned.
fn check_request(ops: &[Op]) -> Result<()> {
    if ops.len() > LIMITS.max_ops_per_txn {
        return Err(Error::TooLarge {
            what: "transaction's operation count",
            size: ops.len(),
            limit: LIMITS.max_ops_per_txn,
        });
    }
    let mut bytes = 0usize;
    for op in ops {
        keys::validate(op.key())?;
        if let Op::Create { value, .. } | Op::Set { value, .. } = op {
            if value.len() > LIMITS.max_value_bytes {
                return Err(Error::TooLarge {
                    what: "value",
                    size: value.len(),
                    limit: LIMITS.max_value_bytes,
                });
            }
        }
        bytes = bytes.saturating_add(op.size());
    }
    if bytes > LIMITS.max_txn_bytes {
        return Err(Error::TooLarge {
            what: "transaction",
            size: bytes,
            limit: LIMITS.max_txn_bytes,
        });
    }
    Ok(())
}

/// A decoded sled record.
#[derive(Debug)]
enum Record {
    Format(u16),
    Revision(Version),
    Entry {
        root: String,
        key: String,
        entry: Entry,
    },
}

/// The sled key of `key` under `root`.
fn disk_key(root: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(root.len() + 1 + key.len());
    out.extend_from_slice(root.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}

/// A persistent key's stored form: `[layout: u16 BE][version: i64 BE][value]`.
fn encode_entry(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_HEADER + e.value.len());
    out.extend_from_slice(&LAYOUT_VERSION.to_be_bytes());
    out.extend_from_slice(&e.version.to_be_bytes());
    out.extend_from_slice(&e.value);
    out
}

/// Decodes one sled record; an error names the record.
fn decode_record(k: &[u8], v: &[u8]) -> Result<Record> {
    let bad = |why: &str| {
        let shown = String::from_utf8_lossy(k).replace('\0', " ");
        Error::Codec(format!(
            "embedded store record {:?}: {why}",
            shown.trim_start()
        ))
    };
    if k == META_FORMAT {
        let arr: [u8; 2] = v
            .try_into()
            .map_err(|_| bad("format marker is not 2 bytes"))?;
        return Ok(Record::Format(u16::from_be_bytes(arr)));
    }
    if k == META_REVISION {
        let arr: [u8; 8] = v.try_into().map_err(|_| bad("revision is not 8 bytes"))?;
        return Ok(Record::Revision(i64::from_be_bytes(arr)));
    }
    let sep = k
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| bad("no root separator"))?;
    let root = std::str::from_utf8(&k[..sep]).map_err(|_| bad("root is not UTF-8"))?;
    let key = std::str::from_utf8(&k[sep + 1..]).map_err(|_| bad("key is not UTF-8"))?;
    if keys::validate(root).is_err() || keys::validate(key).is_err() || key == "/" {
        return Err(bad("not a valid root and key"));
    }
    let (header, value) = v
        .split_at_checked(ENTRY_HEADER)
        .ok_or_else(|| bad("value shorter than its header"))?;
    let (layout, version) = header.split_at(2);
    let layout = u16::from_be_bytes([layout[0], layout[1]]);
    if layout != LAYOUT_VERSION {
        return Err(bad(&format!(
            "entry layout {layout} is not known to this build"
        )));
    }
    let version = version
        .try_into()
        .map(i64::from_be_bytes)
        .map_err(|_| bad("bad version"))?;
    Ok(Record::Entry {
        root: root.to_owned(),
        key: key.to_owned(),
        entry: Entry {
            value: value.to_vec(),
            version,
            owner: None,
        },
    })
}

/// One session on an [`EmbeddedStore`], under one root. Closing or dropping it ends the
/// session: its ephemeral keys are deleted at once and its watches end.
pub struct EmbeddedClient {
    store: Arc<EmbeddedStore>,
    root: String,
    session_id: u64,
    /// Reported only: in one process a session cannot time out.
    session_timeout: Duration,
    state: watch::Receiver<SessionState>,
    /// Set by [`Coordination::close`] (or drop): later calls fail with [`Error::Closed`]
    /// rather than [`Error::SessionExpired`].
    closed: AtomicBool,
}

impl EmbeddedClient {
    /// This client's session, for [`EmbeddedStore::expire_session`].
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The root this client's keys live under.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Runs `f` on this client's namespace, if the session is live.
    fn read<T>(&self, key: &str, f: impl FnOnce(Option<&Namespace>) -> T) -> Result<T> {
        keys::validate(key)?;
        let state = self.store.lock_state()?;
        state
            .check_session(self.session_id)
            .map_err(|e| self.session_error(e))?;
        Ok(f(state.namespaces.get(&self.root)))
    }

    /// Reports an ended session as [`Error::Closed`] if this client closed it.
    fn session_error(&self, e: Error) -> Error {
        match e {
            Error::SessionExpired if self.closed.load(Ordering::Acquire) => Error::Closed,
            other => other,
        }
    }
}

impl fmt::Debug for EmbeddedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedClient")
            .field("root", &self.root)
            .field("session_id", &self.session_id)
            .field("session_timeout", &self.session_timeout)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Coordination for EmbeddedClient {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    fn session_state(&self) -> watch::Receiver<SessionState> {
        self.state.clone()
    }

    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        self.read(key, |ns| {
            ns.and_then(|ns| ns.entries.get(key)).map(versioned)
        })
    }

    async fn children(&self, key: &str) -> Result<Vec<(String, Versioned)>> {
        self.read(key, |ns| ns.map(|ns| ns.children(key)).unwrap_or_default())
    }

    async fn transact(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        let store = Arc::clone(&self.store);
        let root = self.root.clone();
        let session = self.session_id;
        // The commit blocks on a disk flush, so it runs on the blocking pool. If this
        // future is dropped the commit still completes: applied whole, or not at all.
        tokio::task::spawn_blocking(move || store.commit(&root, session, ops))
            .await
            .map_err(|e| Error::Backend(format!("embedded commit task failed: {e}")))?
            .map_err(|e| self.session_error(e))
    }

    async fn watch(&self, key: &str) -> Result<Watch> {
        keys::validate(key)?;
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        let mut state = self.store.lock_state()?;
        state
            .check_session(self.session_id)
            .map_err(|e| self.session_error(e))?;
        let ns = state.namespaces.entry(self.root.clone()).or_default();
        // Watches dropped by their readers go here too, not only when an event finds them.
        ns.watchers.retain(|w| !w.events.is_closed());
        ns.watchers.push(Watcher {
            prefix: key.to_owned(),
            session: self.session_id,
            events: tx,
            resync_queued: false,
        });
        Ok(Watch::new(rx))
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        let store = Arc::clone(&self.store);
        let session = self.session_id;
        // Waits for a commit in flight (a disk flush), so off the async workers. Should
        // this fail, dropping the client ends the session.
        tokio::task::spawn_blocking(move || store.end_session(session))
            .await
            .map_err(|e| Error::Backend(format!("embedded close task failed: {e}")))?
            .map(|_| ())
    }
}

impl Drop for EmbeddedClient {
    /// Ends the session at once. May wait for a commit in flight (one disk flush), so
    /// that the session's ephemeral keys are gone when the drop returns.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        if let Err(e) = self.store.end_session(self.session_id) {
            tracing::error!(session = self.session_id, error = %e, "cannot end embedded session");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn entry(version: Version) -> Entry {
        Entry {
            value: Vec::new(),
            version,
            owner: None,
        }
    }

    #[test]
    fn children_skip_grandchildren_and_near_names() {
        let mut ns = Namespace::default();
        for key in [
            "/a", "/a/b", "/a/b-x", "/a/b/c", "/a/b/c/d", "/a/c", "/a-z", "/a0", "/b",
        ] {
            ns.entries.insert(key.to_owned(), entry(1));
        }
        let names = |key: &str| {
            ns.children(key)
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("/a"), ["b", "b-x", "c"]);
        assert_eq!(names("/"), ["a", "a-z", "a0", "b"]);
        assert_eq!(names("/a/b"), ["c"]);
        assert!(names("/b").is_empty());
        assert!(names("/nothing").is_empty());
    }

    #[test]
    fn recursive_delete_removes_children_first_and_spares_near_names() {
        let mut base = BTreeMap::new();
        for key in ["/a", "/a/b", "/a/b/c", "/a/c", "/a-z", "/a0"] {
            base.insert(key.to_owned(), entry(1));
        }
        let plan = Planner::new(Some(&base), 1, 1)
            .plan(vec![Op::Delete {
                key: "/a".into(),
                version: None,
            }])
            .unwrap();
        let removed: Vec<&str> = plan.changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(removed, ["/a/c", "/a/b/c", "/a/b", "/a"]);
        assert!(plan.changes.iter().all(|c| c.entry.is_none()));
    }

    #[test]
    fn later_operations_see_earlier_ones() {
        let plan = Planner::new(None, 10, 1)
            .plan(vec![
                Op::Create {
                    key: "/x/y".into(),
                    value: b"1".to_vec(),
                    ephemeral: false,
                },
                Op::Set {
                    key: "/x/y".into(),
                    value: b"2".to_vec(),
                    version: Some(12),
                },
                Op::Delete {
                    key: "/x".into(),
                    version: Some(11),
                },
                Op::Create {
                    key: "/x".into(),
                    value: Vec::new(),
                    ephemeral: true,
                },
            ])
            .unwrap();
        assert_eq!(
            plan.results,
            [
                OpResult::Written(12),
                OpResult::Written(13),
                OpResult::Deleted,
                OpResult::Written(14)
            ]
        );
        assert_eq!(plan.revision, 14);
    }

    #[test]
    fn entries_round_trip_and_corrupt_records_name_their_key() {
        let e = Entry {
            value: b"hello".to_vec(),
            version: 42,
            owner: None,
        };
        let k = disk_key("/sluice", "/brokers/ids/1");
        match decode_record(&k, &encode_entry(&e)).unwrap() {
            Record::Entry { root, key, entry } => {
                assert_eq!((root.as_str(), key.as_str()), ("/sluice", "/brokers/ids/1"));
                assert_eq!(
                    (entry.value, entry.version, entry.owner),
                    (b"hello".to_vec(), 42, None)
                );
            }
            other => panic!("decoded {other:?}"),
        }
        for bad in [
            &b""[..],
            &[0, 1, 0][..],
            &[0, 9, 0, 0, 0, 0, 0, 0, 0, 1][..],
        ] {
            let err = decode_record(&k, bad).unwrap_err().to_string();
            assert!(err.contains("/brokers/ids/1"), "{err}");
        }
        assert!(decode_record(b"no-separator", &encode_entry(&e)).is_err());
        assert!(decode_record(&disk_key("/r", "relative"), &encode_entry(&e)).is_err());
        assert!(decode_record(META_REVISION, &[1, 2]).is_err());
    }

    #[tokio::test]
    async fn dropped_watches_and_ended_sessions_leave_nothing_behind() {
        let store = EmbeddedStore::temporary().unwrap();
        let c = store.connect("/r", Duration::from_secs(1)).unwrap();
        let watchers = || store.state.lock().unwrap().namespaces["/r"].watchers.len();
        drop(c.watch("/quiet").await.unwrap());
        let _kept = c.watch("/quiet").await.unwrap();
        assert_eq!(watchers(), 1);
        c.create_ephemeral("/e", Vec::new()).await.unwrap();
        drop(c);
        let state = store.state.lock().unwrap();
        assert!(state.sessions.is_empty());
        assert!(state.namespaces["/r"].watchers.is_empty());
        assert!(!state.namespaces["/r"].entries.contains_key("/e"));
    }

    #[test]
    fn a_full_queue_keeps_its_last_slot_for_resync() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut w = Watcher {
            prefix: "/".into(),
            session: 1,
            events: tx,
            resync_queued: false,
        };
        let put = |i: Version| WatchEvent::Put {
            key: "/k".into(),
            value: Vec::new(),
            version: i,
        };
        for i in 0..10 {
            assert!(w.offer(&put(i)));
        }
        let drained: Vec<WatchEvent> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(drained, [put(0), put(1), put(2), WatchEvent::Resync]);
        // Room again: delivery resumes, and a second overflow yields a second Resync.
        for i in 10..20 {
            assert!(w.offer(&put(i)));
        }
        let drained: Vec<WatchEvent> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(drained, [put(10), put(11), put(12), WatchEvent::Resync]);
        drop(rx);
        assert!(!w.offer(&put(99)), "a dropped reader is noticed");
    }
}
