//! InitProducerId (key 22), non-transactional only: hands out a new producer id (epoch 0)
//! from a block this broker took from the coordination service
//! (`allocate_producer_id_block`). A transactional id is refused with INVALID_REQUEST:
//! Sluice has no transactions yet. The response has no error-message field, so the broker
//! logs the reason; FindCoordinator for the transactional id (which transactional
//! clients send first) carries the message "transactions are not supported".

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use sluice_actors::metadata::registration::allocate_producer_id_block;

use super::{code, error_code, Context, Family};

/// Answers an InitProducerId request.
pub async fn handle(
    ctx: &Context,
    _version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        tracing::warn!("InitProducerId with a transactional id: transactions are not supported");
        // Not TRANSACTIONAL_ID_AUTHORIZATION_FAILED: nothing is wrong with the client's
        // rights, the broker lacks the feature.
        return response.with_error_code(code::INVALID_REQUEST);
    }
    match next_producer_id(ctx).await {
        Ok(id) => response
            .with_error_code(code::NONE)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "cannot allocate a producer id block");
            response.with_error_code(match error_code(&e, Family::Data) {
                code::UNKNOWN_SERVER_ERROR => code::COORDINATOR_NOT_AVAILABLE,
                other => other,
            })
        }
    }
}

/// The next producer id of this broker's block, taking a new block when it is used up.
async fn next_producer_id(ctx: &Context) -> sluice_actors::Result<i64> {
    loop {
        {
            let mut ids = ctx
                .producer_ids
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((next, last)) = ids.as_mut() {
                if *next <= *last {
                    let id = *next;
                    *next += 1;
                    return Ok(id);
                }
            }
        }
        let block =
            allocate_producer_id_block(&ctx.broker.coordination, ctx.broker.broker_id).await?;
        let mut ids = ctx
            .producer_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *ids = Some((block.first, block.last()));
    }
}
