//! OffsetForLeaderEpoch (key 23): per partition, the end offset of the largest leader epoch
//! at or below the one asked (consumers validating their position after a leader change).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use sluice_actors::log::checkpoint::TopicPartition;
use sluice_actors::replica::messages::OffsetForLeaderEpoch;
use sluice_actors::Error;

use super::produce::not_hosted_code;
use super::{error_code, Context, Family};

/// Answers an OffsetForLeaderEpoch request.
pub async fn handle(
    ctx: &Context,
    version: i16,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let tp = TopicPartition::new(name.clone(), p.partition);
            let result = match ctx.broker.replicas.get(&tp) {
                None => Err(not_hosted_code(ctx, &name, p.partition)),
                Some(replica) => match replica
                    .send(OffsetForLeaderEpoch {
                        leader_epoch: p.leader_epoch,
                    })
                    .await
                {
                    Ok(Ok(found)) => Ok(found),
                    Ok(Err(e)) => Err(error_code(&e, Family::Data)),
                    Err(e) => Err(error_code(&Error::Stopped(e.to_string()), Family::Data)),
                },
            };
            let mut r = EpochEndOffset::default().with_partition(p.partition);
            match result {
                Ok(found) => {
                    if version >= 1 {
                        r.leader_epoch = found.leader_epoch;
                    }
                    r.end_offset = found.end_offset;
                }
                Err(code) => {
                    r.error_code = code;
                    r.end_offset = -1;
                }
            }
            partitions.push(r);
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
