//! [`AckWaitingRoom`]: the acks=all produces of one partition that wait for the high
//! watermark to pass their last offset (Kafka's delayed-produce purgatory, per partition).
//!
//! A produce parks with its *required offset* (last offset + 1) and gets a receiver; the
//! replica completes every produce whose required offset the high watermark reached, or
//! fails them all when it stops leading. The waiting side owns the timeout: when it gives
//! up it drops its receiver, and the closed sender is purged here later.
//!
//! Not thread-safe; owned by the partition replica. Nothing survives a restart: a produce
//! waiting at a crash was never acknowledged.

use std::collections::BTreeMap;

use tokio::sync::oneshot;

use crate::Error;

/// How a parked produce ends: `Ok` once replicated, or the error to answer with.
pub(crate) type AckOutcome = Result<(), Error>;

/// Parked acks=all produces, by required offset. See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct AckWaitingRoom {
    waiting: BTreeMap<i64, Vec<oneshot::Sender<AckOutcome>>>,
    len: usize,
    /// Purge closed senders when `len` reaches this (amortised: doubles with the room).
    purge_at: usize,
}

const MIN_PURGE_AT: usize = 64;

impl AckWaitingRoom {
    /// Parks a produce until the high watermark reaches `required_offset`.
    pub(crate) fn park(&mut self, required_offset: i64) -> oneshot::Receiver<AckOutcome> {
        if self.len >= self.purge_at.max(MIN_PURGE_AT) {
            self.purge_closed();
            self.purge_at = self.len * 2;
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.entry(required_offset).or_default().push(tx);
        self.len += 1;
        rx
    }

    /// Completes every produce whose required offset is ≤ `high_watermark` with
    /// `outcome()` (called once per produce: errors are not `Clone`).
    pub(crate) fn complete_up_to(&mut self, high_watermark: i64, outcome: impl Fn() -> AckOutcome) {
        let later = self.waiting.split_off(&(high_watermark.saturating_add(1)));
        let done = std::mem::replace(&mut self.waiting, later);
        for tx in done.into_values().flatten() {
            self.len -= 1;
            // The producer may have timed out and gone; nothing to do then.
            let _ = tx.send(outcome());
        }
    }

    /// Fails every parked produce with `error()`.
    pub(crate) fn fail_all(&mut self, error: impl Fn() -> Error) {
        for tx in std::mem::take(&mut self.waiting).into_values().flatten() {
            let _ = tx.send(Err(error()));
        }
        self.len = 0;
    }

    /// Produces parked (including ones whose waiter already gave up).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn purge_closed(&mut self) {
        self.waiting.retain(|_, senders| {
            senders.retain(|tx| !tx.is_closed());
            !senders.is_empty()
        });
        self.len = self.waiting.values().map(Vec::len).sum();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn completes_only_up_to_the_high_watermark() {
        let mut room = AckWaitingRoom::default();
        let mut a = room.park(5);
        let mut b = room.park(10);
        room.complete_up_to(7, || Ok(()));
        assert!(matches!(a.try_recv(), Ok(Ok(()))));
        assert!(b.try_recv().is_err());
        assert_eq!(room.len(), 1);
        room.fail_all(|| Error::NotLeaderOrFollower("t-0".into()));
        assert!(matches!(
            b.try_recv(),
            Ok(Err(Error::NotLeaderOrFollower(_)))
        ));
        assert_eq!(room.len(), 0);
    }

    #[test]
    fn abandoned_waiters_are_purged() {
        let mut room = AckWaitingRoom::default();
        for i in 0..MIN_PURGE_AT {
            drop(room.park(i as i64 + 100));
        }
        let _kept = room.park(1);
        assert_eq!(room.len(), 1);
    }
}
