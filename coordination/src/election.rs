//! Leader election with fencing epochs, built on [`Coordination`] alone, so it behaves
//! the same on every backend.
//!
//! Two keys: the *leader key* (ephemeral, holds a [`LeaderRecord`]) and the *epoch key*
//! (persistent, the last epoch as 8 big-endian bytes). A candidate wins by one
//! transaction: create the leader key (it must be absent) **and** bump the epoch key with
//! a compare-and-set on its version. So there is at most one leader at a time (the key is
//! ephemeral and created only if absent) and every leadership's epoch is strictly greater
//! than every earlier one (the CAS serialises bumps). Losers watch the leader key and try
//! again when it goes — when the leader resigns, closes its session, or the session
//! expires.
//!
//! The winner's [`Leadership::guard`] is a check on the epoch key's version: put it first
//! in every transaction the leader writes, and a deposed leader whose session has not yet
//! noticed it lost can write nothing (Kafka's ZooKeeper-mode controller did the same with
//! `/controller_epoch`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::codec::{self, Envelope};
use crate::{Coordination, Error, Op, OpResult, Result, SessionState, Version, WatchEvent};

/// What the leader key holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderRecord {
    /// The leadership's epoch.
    pub epoch: i64,
    /// The candidate's payload (e.g. a broker id).
    pub value: Vec<u8>,
}

impl Envelope for LeaderRecord {
    const VERSION: u16 = 1;
    fn decode_body(_version: u16, body: &[u8]) -> Result<Self> {
        codec::from_bincode(body)
    }
    fn encode_body(&self) -> Result<Vec<u8>> {
        codec::to_bincode(self)
    }
}

/// The current leader as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    pub epoch: i64,
    pub value: Vec<u8>,
}

/// One election: a leader key and an epoch key.
#[derive(Debug, Clone)]
pub struct Election {
    coord: Arc<dyn Coordination>,
    leader_key: String,
    epoch_key: String,
}

fn decode_epoch(bytes: &[u8]) -> Result<i64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::Codec(format!("epoch value of {} bytes, expected 8", bytes.len())))?;
    Ok(i64::from_be_bytes(arr))
}

impl Election {
    /// An election on `leader_key` with epochs in `epoch_key` (Kafka: `/controller` and
    /// `/controller_epoch`).
    pub fn new(
        coord: Arc<dyn Coordination>,
        leader_key: &str,
        epoch_key: &str,
    ) -> Result<Election> {
        crate::keys::validate(leader_key)?;
        crate::keys::validate(epoch_key)?;
        Ok(Election {
            coord,
            leader_key: leader_key.to_owned(),
            epoch_key: epoch_key.to_owned(),
        })
    }

    /// Who leads now, if anyone.
    pub async fn leader(&self) -> Result<Option<LeaderInfo>> {
        match self.coord.get(&self.leader_key).await? {
            Some(v) => {
                let r: LeaderRecord = codec::decode(&v.value)?;
                Ok(Some(LeaderInfo {
                    epoch: r.epoch,
                    value: r.value,
                }))
            }
            None => Ok(None),
        }
    }

    /// The last epoch handed out (0 if none yet).
    pub async fn current_epoch(&self) -> Result<i64> {
        match self.coord.get(&self.epoch_key).await? {
            Some(v) => decode_epoch(&v.value),
            None => Ok(0),
        }
    }

    /// Campaigns until elected; resolves with the leadership. Fails if the session ends
    /// first.
    pub async fn campaign(&self, value: Vec<u8>) -> Result<Leadership> {
        loop {
            // Watch before trying, so a deletion right after a failed try is not missed.
            let mut watch = self.coord.watch(&self.leader_key).await?;
            let (epoch, epoch_op) = match self.coord.get(&self.epoch_key).await? {
                None => (
                    1,
                    Op::Create {
                        key: self.epoch_key.clone(),
                        value: 1i64.to_be_bytes().to_vec(),
                        ephemeral: false,
                    },
                ),
                Some(v) => {
                    let next = decode_epoch(&v.value)? + 1;
                    (
                        next,
                        Op::Set {
                            key: self.epoch_key.clone(),
                            value: next.to_be_bytes().to_vec(),
                            version: Some(v.version),
                        },
                    )
                }
            };
            let record = codec::encode(&LeaderRecord {
                epoch,
                value: value.clone(),
            })?;
            let ops = vec![
                Op::Create {
                    key: self.leader_key.clone(),
                    value: record,
                    ephemeral: true,
                },
                epoch_op,
            ];
            match self.coord.transact(ops).await {
                Ok(results) => {
                    let version = |i: usize| match results.get(i) {
                        Some(OpResult::Written(v)) => Ok(*v),
                        other => Err(Error::Backend(format!(
                            "unexpected election result {other:?}"
                        ))),
                    };
                    let (leader_version, epoch_version) = (version(0)?, version(1)?);
                    tracing::info!(key = %self.leader_key, epoch, "elected");
                    return Ok(Leadership::start(
                        self.clone(),
                        epoch,
                        leader_version,
                        epoch_version,
                    ));
                }
                Err(Error::Conflict { index: 0, .. }) => {
                    // Someone leads: wait for the leader key to go.
                    loop {
                        match watch.next().await {
                            Some(WatchEvent::Delete { key }) if key == self.leader_key => break,
                            Some(WatchEvent::Resync) => break,
                            Some(_) => {}
                            None => return Err(self.ended()),
                        }
                    }
                }
                // The epoch moved under us (another winner in between): read again.
                Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn ended(&self) -> Error {
        match *self.coord.session_state().borrow() {
            SessionState::Expired => Error::SessionExpired,
            _ => Error::Closed,
        }
    }
}

/// Being the leader. Dropping it does not resign (the session's end does); call
/// [`Leadership::resign`] to step down at once.
#[derive(Debug)]
pub struct Leadership {
    election: Election,
    epoch: i64,
    leader_version: Version,
    epoch_version: Version,
    lost: watch::Receiver<bool>,
    monitor: tokio::task::JoinHandle<()>,
}

impl Leadership {
    fn start(
        election: Election,
        epoch: i64,
        leader_version: Version,
        epoch_version: Version,
    ) -> Leadership {
        let (tx, rx) = watch::channel(false);
        let monitor = tokio::spawn(monitor(election.clone(), epoch, leader_version, tx));
        Leadership {
            election,
            epoch,
            leader_version,
            epoch_version,
            lost: rx,
            monitor,
        }
    }

    /// This leadership's epoch: strictly greater than every earlier leadership's.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The fencing guard: a check that the epoch key is still at the version this
    /// leadership wrote. Put it first in every transaction the leader makes.
    pub fn guard(&self) -> Op {
        Op::Check {
            key: self.election.epoch_key.clone(),
            version: self.epoch_version,
        }
    }

    /// Whether leadership is known lost (leader key gone or replaced, session expired).
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Resolves when leadership is lost.
    pub async fn lost(&mut self) {
        while !*self.lost.borrow_and_update() {
            if self.lost.changed().await.is_err() {
                return;
            }
        }
    }

    /// Steps down: deletes the leader key if it is still this leadership's.
    pub async fn resign(self) -> Result<()> {
        self.monitor.abort();
        match self
            .election
            .coord
            .delete(&self.election.leader_key, Some(self.leader_version))
            .await
        {
            Ok(()) | Err(Error::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

/// Watches the leader key and the session; flips `lost` when either says leadership is
/// over. It opens its own watch after the win and re-reads the key, so events from before
/// the win (still queued on the campaign's watch) cannot be taken for a loss.
async fn monitor(
    election: Election,
    epoch: i64,
    leader_version: Version,
    lost: watch::Sender<bool>,
) {
    let coord = &election.coord;
    let mut session = coord.session_state();
    // Some(true): still ours; Some(false): lost; None: cannot tell now (the session
    // state decides). The epoch in the record decides, not the version alone: ZooKeeper
    // gives a re-created leader key version 0 again.
    let still_ours = |read: Result<Option<crate::Versioned>>| match read {
        Ok(Some(v)) => Some(
            v.version == leader_version
                && codec::decode::<LeaderRecord>(&v.value).is_ok_and(|r| r.epoch == epoch),
        ),
        Ok(None) => Some(false),
        Err(_) => None,
    };
    let watched = match coord.watch(&election.leader_key).await {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(key = %election.leader_key, error = %e, "cannot watch the leader key");
            None
        }
    };
    if let Some(mut watch) = watched {
        if still_ours(coord.get(&election.leader_key).await) != Some(false) {
            loop {
                tokio::select! {
                    event = watch.next() => match event {
                        Some(WatchEvent::Delete { key }) if key == election.leader_key => break,
                        Some(WatchEvent::Put { key, version, .. })
                            if key == election.leader_key && version != leader_version => break,
                        Some(WatchEvent::Resync) => {
                            if still_ours(coord.get(&election.leader_key).await) == Some(false) {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => break,
                    },
                    changed = session.changed() => {
                        if changed.is_err() || *session.borrow() == SessionState::Expired {
                            break;
                        }
                    }
                }
            }
        }
    }
    tracing::warn!(key = %election.leader_key, "leadership lost");
    let _ = lost.send(true);
}
