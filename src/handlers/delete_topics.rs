//! DeleteTopics (key 20): sent to the controller, by name or (v6+) by topic id.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::controller::DeleteTopics;
use sluice_actors::Error;

use super::{code, error_code, timeout, topic_uuid, wait_for_metadata, Context, Family};

/// Answers a DeleteTopics request.
pub async fn handle(
    ctx: &Context,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let wait = timeout(request.timeout_ms);
    // (name, topic id as sent, result so far)
    let mut entries: Vec<(Option<String>, Option<uuid::Uuid>, Option<i16>)> = Vec::new();
    if version >= 6 {
        for t in &request.topics {
            match &t.name {
                Some(name) => {
                    // The id is gone from the cache once deleted: note it now.
                    let id = ctx
                        .broker
                        .metadata
                        .topic(&name.0)
                        .map(|t| topic_uuid(&t.topic_id));
                    entries.push((Some(name.0.to_string()), id, None));
                }
                None => {
                    let id = *t.topic_id.as_bytes();
                    let name = ctx.broker.metadata.read(|view| {
                        view.topics
                            .iter()
                            .find(|(_, m)| m.topic_id == id)
                            .map(|(n, _)| n.clone())
                    });
                    let error = name.is_none().then_some(code::UNKNOWN_TOPIC_ID);
                    entries.push((name, Some(t.topic_id), error));
                }
            }
        }
    } else {
        for name in &request.topic_names {
            entries.push((Some(name.0.to_string()), None, None));
        }
    }
    let names: Vec<String> = entries
        .iter()
        .filter(|e| e.2.is_none())
        .filter_map(|e| e.0.clone())
        .collect();
    if !names.is_empty() {
        let answer = ctx
            .broker
            .controller
            .send(DeleteTopics {
                names: names.clone(),
                timeout: wait,
            })
            .await
            .map_err(|e| Error::Stopped(format!("controller: {e}")))
            .and_then(|r| r);
        match answer {
            Ok(results) => {
                for (name, result) in results {
                    for e in entries
                        .iter_mut()
                        .filter(|e| e.0.as_deref() == Some(&name) && e.2.is_none())
                    {
                        e.2 = Some(match &result {
                            Ok(()) => code::NONE,
                            Err(err) => error_code(err, Family::Data),
                        });
                    }
                }
            }
            Err(err) => {
                let c = error_code(&err, Family::Data);
                for e in entries.iter_mut().filter(|e| e.2.is_none()) {
                    e.2 = Some(c);
                }
            }
        }
        let deleted: Vec<&String> = names.iter().collect();
        if !wait.is_zero() {
            wait_for_metadata(ctx, wait, |view| {
                deleted
                    .iter()
                    .all(|n| !view.topics.contains_key(n.as_str()))
            })
            .await;
        }
    }
    let responses = entries
        .into_iter()
        .map(|(name, id, error)| {
            let mut r = DeletableTopicResult::default()
                .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                .with_error_code(error.unwrap_or(code::NONE));
            if version >= 6 {
                r.topic_id = id.unwrap_or_default();
            }
            r
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
