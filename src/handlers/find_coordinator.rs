//! FindCoordinator (key 10): the broker coordinating a group (the leader of its
//! `__consumer_offsets` partition; the topic is created on first use). v0–3 carry one key,
//! v4+ a batch of keys. Key type 1 (TRANSACTION) is refused with INVALID_REQUEST and a
//! message saying so: Sluice has no transactions yet.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{code, group_error_code, Context};

/// FindCoordinator key type of a consumer group.
const GROUP: i8 = 0;
/// FindCoordinator key type of a transactional id.
const TRANSACTION: i8 = 1;

/// One key's answer: node id, host, port, error code, error message.
struct Found {
    node_id: i32,
    host: String,
    port: i32,
    error_code: i16,
    message: Option<String>,
}

/// Answers a FindCoordinator request.
pub async fn handle(
    ctx: &Context,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if version >= 4 {
        let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
        for key in request.coordinator_keys {
            let found = find(ctx, request.key_type, key.as_str()).await;
            coordinators.push(
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(found.node_id))
                    .with_host(StrBytes::from_string(found.host))
                    .with_port(found.port)
                    .with_error_code(found.error_code)
                    .with_error_message(found.message.map(StrBytes::from_string)),
            );
        }
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let found = find(ctx, request.key_type, request.key.as_str()).await;
    let mut response = FindCoordinatorResponse::default()
        .with_error_code(found.error_code)
        .with_node_id(BrokerId(found.node_id))
        .with_host(StrBytes::from_string(found.host))
        .with_port(found.port);
    if version >= 1 {
        response.error_message = found.message.map(StrBytes::from_string);
    }
    response
}

async fn find(ctx: &Context, key_type: i8, key: &str) -> Found {
    let refuse = |error_code, message: String| Found {
        node_id: -1,
        host: String::new(),
        port: -1,
        error_code,
        message: Some(message),
    };
    match key_type {
        GROUP => {}
        TRANSACTION => {
            tracing::debug!(
                transactional_id = key,
                "FindCoordinator for a transaction: transactions are not supported"
            );
            return refuse(
                code::INVALID_REQUEST,
                "transactions are not supported by this broker (Sluice)".into(),
            );
        }
        other => return refuse(code::INVALID_REQUEST, format!("unknown key type {other}")),
    }
    if key.is_empty() {
        return refuse(code::INVALID_GROUP_ID, "empty group id".into());
    }
    match ctx.broker.groups.find_coordinator(key).await {
        Ok(node_id) => match ctx.broker.metadata.broker(node_id) {
            Some(b) => Found {
                node_id,
                host: b.host,
                port: i32::from(b.port),
                error_code: code::NONE,
                message: None,
            },
            None => refuse(
                code::COORDINATOR_NOT_AVAILABLE,
                format!("coordinator {node_id} is not registered"),
            ),
        },
        Err(e) => refuse(group_error_code(&e), e.to_string()),
    }
}
