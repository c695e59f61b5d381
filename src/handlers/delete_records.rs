//! DeleteRecords (key 21): moves partitions' log start offsets up (leader only).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use sluice_actors::log::checkpoint::TopicPartition;
use sluice_actors::replica::messages::DeleteRecords;
use sluice_actors::Error;

use super::produce::not_hosted_code;
use super::{error_code, Context, Family};

/// Answers a DeleteRecords request.
pub async fn handle(
    ctx: &Context,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let tp = TopicPartition::new(name.clone(), p.partition_index);
            let result = match ctx.broker.replicas.get(&tp) {
                None => Err(not_hosted_code(ctx, &name, p.partition_index)),
                Some(replica) => match replica.send(DeleteRecords { offset: p.offset }).await {
                    Ok(Ok(low_watermark)) => Ok(low_watermark),
                    Ok(Err(e)) => Err(error_code(&e, Family::Data)),
                    Err(e) => Err(error_code(&Error::Stopped(e.to_string()), Family::Data)),
                },
            };
            let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            partitions.push(match result {
                Ok(low) => r.with_low_watermark(low),
                Err(code) => r.with_error_code(code).with_low_watermark(-1),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
