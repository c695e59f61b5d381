//! What every broker writes for itself (not only the controller): its registration, the
//! cluster id on first start, producer id blocks, and requests to the controller.

use std::sync::Arc;
use std::time::Duration;

use sluice_coordination::{
    ConflictKind, Coordination, Error as CoordError, Op, Version, WatchEvent,
};

use super::paths;
use super::records::{
    self, BrokerRegistration, ClusterId, CreateTopicRequestRecord, ProducerIdBlock,
};
use super::{ids, topic};
use crate::{Error, Result};

/// How many producer ids one block holds (Kafka: `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

fn exists(e: &CoordError) -> bool {
    matches!(
        e,
        CoordError::Conflict {
            kind: ConflictKind::Exists,
            ..
        }
    )
}

/// Registers this broker at `/brokers/ids/<id>` (ephemeral, bound to `coord`'s session);
/// returns the key's version.
///
/// If the key exists — a registration left by an earlier session of this broker that
/// the service has not expired yet (a restart within the session timeout, or this
/// process's own expired session), or another broker configured with the same id — this
/// waits up to `wait` (use the session timeout) for it to go, then fails with
/// [`Error::BrokerIdInUse`] naming the holder.
pub async fn register_broker(
    coord: &Arc<dyn Coordination>,
    registration: &BrokerRegistration,
    wait: Duration,
) -> Result<Version> {
    let key = paths::broker(registration.id);
    let value = records::encode(registration)?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Watch first, so a deletion right after the failed create is not missed.
        let mut watch = coord.watch(&key).await?;
        let err = match coord.create_ephemeral(&key, value.clone()).await {
            Ok(version) => {
                tracing::info!(broker = registration.id, "broker registered");
                return Ok(version);
            }
            Err(e) if exists(&e) => e,
            Err(e) => return Err(e.into()),
        };
        let Some(current) = coord.get(&key).await? else {
            continue;
        };
        let holder = match records::decode::<BrokerRegistration>(&key, &current.value) {
            Ok(r) if r.incarnation == registration.incarnation => {
                tracing::info!(
                    broker = registration.id,
                    "a registration of this broker's earlier session is still there; waiting for it to expire"
                );
                format!("this broker's earlier session ({}:{})", r.host, r.port)
            }
            Ok(r) => {
                tracing::warn!(
                    broker = registration.id, holder = %format!("{}:{}", r.host, r.port),
                    "broker id already registered; waiting for that session to end"
                );
                format!("{}:{} (incarnation {})", r.host, r.port, r.incarnation)
            }
            Err(_) => format!("an undecodable registration ({err})"),
        };
        let gone = tokio::time::timeout_at(deadline, async {
            loop {
                match watch.next().await {
                    Some(WatchEvent::Delete { key: k }) if k == key => return Ok(()),
                    Some(WatchEvent::Resync) => return Ok(()),
                    Some(_) => {}
                    None => return Err(Error::Coordination(CoordError::SessionExpired)),
                }
            }
        })
        .await;
        match gone {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Error::BrokerIdInUse {
                    id: registration.id,
                    holder,
                })
            }
        }
    }
}

/// The cluster id: read from `/cluster/id`, or created there (once, by whichever broker
/// gets there first) with a new random id.
pub async fn ensure_cluster_id(coord: &Arc<dyn Coordination>) -> Result<String> {
    loop {
        if let Some(v) = coord.get(paths::CLUSTER_ID).await? {
            return Ok(records::decode::<ClusterId>(paths::CLUSTER_ID, &v.value)?.id);
        }
        let id = ids::random_cluster_id();
        let value = records::encode(&ClusterId { id: id.clone() })?;
        match coord.create(paths::CLUSTER_ID, value).await {
            Ok(_) => {
                tracing::info!(cluster_id = %id, "created the cluster id");
                return Ok(id);
            }
            Err(e) if exists(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Takes the next block of [`PRODUCER_ID_BLOCK_SIZE`] producer ids for `broker_id`, by
/// compare-and-set on `/latest_producer_id_block` (any broker may call it; concurrent
/// callers get disjoint blocks). The first block starts at 0.
pub async fn allocate_producer_id_block(
    coord: &Arc<dyn Coordination>,
    broker_id: i32,
) -> Result<ProducerIdBlock> {
    let key = paths::LATEST_PRODUCER_ID_BLOCK;
    loop {
        let (block, op) = match coord.get(key).await? {
            None => {
                let block = ProducerIdBlock {
                    broker: broker_id,
                    first: 0,
                    size: PRODUCER_ID_BLOCK_SIZE,
                };
                let value = records::encode(&block)?;
                let op = Op::Create {
                    key: key.to_owned(),
                    value,
                    ephemeral: false,
                };
                (block, op)
            }
            Some(current) => {
                let last = records::decode::<ProducerIdBlock>(key, &current.value)?;
                let first = last
                    .first
                    .checked_add(last.size)
                    .filter(|f| f.checked_add(PRODUCER_ID_BLOCK_SIZE).is_some())
                    .ok_or_else(|| {
                        Error::InvalidRequest("every producer id has been handed out".into())
                    })?;
                let block = ProducerIdBlock {
                    broker: broker_id,
                    first,
                    size: PRODUCER_ID_BLOCK_SIZE,
                };
                let op = Op::Set {
                    key: key.to_owned(),
                    value: records::encode(&block)?,
                    version: Some(current.version),
                };
                (block, op)
            }
        };
        match coord.write_one(op).await {
            Ok(_) => return Ok(block),
            // Another broker took a block in between: take the next one.
            Err(CoordError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Asks the controller to create `name` (auto-creation from a Metadata request on any
/// broker) by writing `/admin/create_topics/<name>`. A request already pending is fine.
pub async fn request_topic_creation(
    coord: &Arc<dyn Coordination>,
    name: &str,
    request: &CreateTopicRequestRecord,
) -> Result<()> {
    topic::validate_name(name)?;
    let value = records::encode(request)?;
    match coord
        .create(&paths::create_topic_request(name), value)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if exists(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Asks the controller to delete `name` by writing `/admin/delete_topics/<name>` (empty
/// value, as in Kafka). A deletion already pending is fine.
pub async fn request_topic_deletion(coord: &Arc<dyn Coordination>, name: &str) -> Result<()> {
    topic::validate_name(name)?;
    match coord
        .create(&paths::delete_topic_request(name), Vec::new())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if exists(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
