//! CreatePartitions (key 37): sent to the controller; answers once the new partitions have
//! leaders, bounded by the request's timeout.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::controller::{CreatePartitions, NewPartitions};
use sluice_actors::Error;

use super::{code, error_code, has_leaders, timeout, wait_for_metadata, Context, Family};

/// Answers a CreatePartitions request.
pub async fn handle(
    ctx: &Context,
    _version: i16,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let wait = timeout(request.timeout_ms);
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let topics: Vec<NewPartitions> = request
        .topics
        .iter()
        .map(|t| NewPartitions {
            topic: t.name.0.to_string(),
            new_total: t.count,
            assignments: t.assignments.as_ref().map(|a| {
                a.iter()
                    .map(|p| p.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            }),
        })
        .collect();
    let mut results: Vec<(i16, Option<String>)> = vec![(code::NONE, None); names.len()];
    if !topics.is_empty() {
        let answer = ctx
            .broker
            .controller
            .send(CreatePartitions {
                topics,
                validate_only: request.validate_only,
                timeout: wait,
            })
            .await
            .map_err(|e| Error::Stopped(format!("controller: {e}")))
            .and_then(|r| r);
        match answer {
            Ok(per_topic) => {
                for (slot, (_, result)) in results.iter_mut().zip(per_topic) {
                    if let Err(e) = result {
                        *slot = (
                            error_code(&e, Family::CreatePartitions),
                            Some(e.to_string()),
                        );
                    }
                }
            }
            Err(e) => {
                let c = error_code(&e, Family::CreatePartitions);
                for slot in &mut results {
                    *slot = (c, Some(e.to_string()));
                }
            }
        }
        if !request.validate_only && !wait.is_zero() {
            let grown: Vec<String> = names
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.0 == code::NONE)
                .map(|(n, _)| n.0.to_string())
                .collect();
            wait_for_metadata(ctx, wait, |view| grown.iter().all(|n| has_leaders(view, n))).await;
        }
    }
    let results = names
        .into_iter()
        .zip(results)
        .map(|(name, (error, message))| {
            CreatePartitionsTopicResult::default()
                .with_name(name)
                .with_error_code(error)
                .with_error_message(message.map(StrBytes::from_string))
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
