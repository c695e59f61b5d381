//! ListOffsets (key 2): per partition, the offset for a timestamp (earliest, latest, max
//! timestamp, or the first record at or after a time), from the partition's replica.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use sluice_actors::log::checkpoint::TopicPartition;
use sluice_actors::replica::messages::ListOffsets;
use sluice_actors::Error;

use super::produce::not_hosted_code;
use super::{error_code, Context, Family};

/// Answers a ListOffsets request.
pub async fn handle(
    ctx: &Context,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let isolation_level = if version >= 2 {
        request.isolation_level
    } else {
        0
    };
    // Send every partition's question before waiting for any answer.
    let mut pending = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let tp = TopicPartition::new(name.clone(), p.partition_index);
            let sent = match ctx.broker.replicas.get(&tp) {
                Some(replica) => Ok(replica.send(ListOffsets {
                    timestamp: p.timestamp,
                    isolation_level,
                })),
                None => Err(not_hosted_code(ctx, &name, p.partition_index)),
            };
            partitions.push((p.partition_index, sent));
        }
        pending.push((topic.name, partitions));
    }
    let mut topics = Vec::with_capacity(pending.len());
    for (name, partitions) in pending {
        let mut responses = Vec::with_capacity(partitions.len());
        for (index, sent) in partitions {
            let result = match sent {
                Err(code) => Err(code),
                Ok(request) => match request.await {
                    Ok(Ok(found)) => Ok(found),
                    Ok(Err(e)) => Err(error_code(&e, Family::Data)),
                    Err(e) => Err(error_code(&Error::Stopped(e.to_string()), Family::Data)),
                },
            };
            let mut p = ListOffsetsPartitionResponse::default().with_partition_index(index);
            match result {
                Ok(Some(found)) => {
                    p.timestamp = found.timestamp;
                    p.offset = found.offset;
                }
                Ok(None) => {
                    p.timestamp = -1;
                    p.offset = -1;
                }
                Err(code) => {
                    p.error_code = code;
                    p.timestamp = -1;
                    p.offset = -1;
                }
            }
            responses.push(p);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(name)
                .with_partitions(responses),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
