//! IncrementalAlterConfigs (key 44): SET / DELETE / APPEND / SUBTRACT per key, on a
//! topic's overrides or on this broker's dynamic config (`/config/brokers/<id>`, which
//! overrides the config file as in Kafka). Writing, validation and `validate_only` are
//! [`super::alter_configs`]'s.
//!
//! As in Kafka: APPEND and SUBTRACT are for list configs only (`cleanup.policy`,
//! `log.cleanup.policy`) and start from the current override, else the config's Kafka
//! default; APPEND skips values already present; a key given twice is INVALID_REQUEST.
//!
//! Broker resources accept only the keys applied at runtime: the broker-level synonyms of
//! topic configs (`log.retention.ms`, `log.segment.bytes`, `log.cleanup.policy`, …), which
//! change the defaults of every topic without an override on this broker at once. Other
//! broker keys are refused with INVALID_CONFIG: set them in the config file and restart.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::log::config::{LogConfig, CLEANUP_POLICY_CONFIG};

use super::alter_configs::{alter_resource, Failure};
use super::code;
use super::describe_configs::resource;
use super::Context;

/// Kafka's `AlterConfigOp.OpType` codes.
pub mod op {
    pub const SET: i8 = 0;
    pub const DELETE: i8 = 1;
    pub const APPEND: i8 = 2;
    pub const SUBTRACT: i8 = 3;
}

/// Answers an IncrementalAlterConfigs request.
pub async fn handle(
    ctx: &Context,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let validate_only = request.validate_only;
    let mut responses = Vec::new();
    for r in request.resources {
        let outcome = alter(ctx, &r, validate_only).await;
        let mut response = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name);
        if let Err((code, message)) = outcome {
            response.error_code = code;
            response.error_message = Some(StrBytes::from_string(message));
        }
        responses.push(response);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// One requested operation.
#[derive(Debug, Clone)]
struct Change {
    name: String,
    op: i8,
    value: Option<String>,
}

async fn alter(
    ctx: &Context,
    r: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Failure> {
    let mut seen = BTreeSet::new();
    let mut changes = Vec::new();
    for c in &r.configs {
        let name = c.name.to_string();
        if !seen.insert(name.clone()) {
            return Err((
                code::INVALID_REQUEST,
                format!("error due to duplicate config keys: {name}"),
            ));
        }
        if !matches!(
            c.config_operation,
            op::SET | op::DELETE | op::APPEND | op::SUBTRACT
        ) {
            return Err((
                code::INVALID_REQUEST,
                format!("unknown config operation {} for {name}", c.config_operation),
            ));
        }
        if c.config_operation != op::DELETE && c.value.is_none() {
            return Err((
                code::INVALID_REQUEST,
                format!("null value not supported for: {name}"),
            ));
        }
        changes.push(Change {
            name,
            op: c.config_operation,
            value: c.value.as_ref().map(ToString::to_string),
        });
    }
    let resource_type = r.resource_type;
    let apply = |current: &BTreeMap<String, String>| apply(resource_type, current, &changes);
    alter_resource(
        ctx,
        resource_type,
        r.resource_name.as_ref(),
        validate_only,
        apply,
    )
    .await
}

/// The list configs APPEND and SUBTRACT apply to, by resource type.
fn is_list_config(resource_type: i8, name: &str) -> bool {
    match resource_type {
        resource::TOPIC => name == CLEANUP_POLICY_CONFIG,
        resource::BROKER => name == "log.cleanup.policy",
        _ => false,
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(ToString::to_string)
        .collect()
}

/// The configs after `changes`, from `current`.
fn apply(
    resource_type: i8,
    current: &BTreeMap<String, String>,
    changes: &[Change],
) -> Result<BTreeMap<String, String>, Failure> {
    let mut new = current.clone();
    for c in changes {
        let value = c.value.clone().unwrap_or_default();
        match c.op {
            op::SET => {
                new.insert(c.name.clone(), value);
            }
            op::DELETE => {
                new.remove(&c.name);
            }
            op::APPEND | op::SUBTRACT => {
                if !is_list_config(resource_type, &c.name) {
                    let verb = if c.op == op::APPEND {
                        "append"
                    } else {
                        "subtract"
                    };
                    return Err((
                        code::INVALID_CONFIG,
                        format!(
                            "config value {verb} is not allowed for config key: {}",
                            c.name
                        ),
                    ));
                }
                let old = new.get(&c.name).cloned().unwrap_or_else(|| {
                    LogConfig::default()
                        .to_props()
                        .remove(CLEANUP_POLICY_CONFIG)
                        .unwrap_or_default()
                });
                let mut list = split_list(&old);
                let given = split_list(&value);
                if c.op == op::APPEND {
                    for v in given {
                        if !list.contains(&v) {
                            list.push(v);
                        }
                    }
                } else {
                    list.retain(|v| !given.contains(v));
                }
                new.insert(c.name.clone(), list.join(","));
            }
            other => {
                return Err((
                    code::INVALID_REQUEST,
                    format!("unknown config operation {other} for {}", c.name),
                ))
            }
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(name: &str, op: i8, value: Option<&str>) -> Change {
        Change {
            name: name.into(),
            op,
            value: value.map(Into::into),
        }
    }

    #[test]
    fn operations() {
        let current: BTreeMap<String, String> =
            [("retention.ms".to_string(), "1000".to_string())].into();
        let new = apply(
            resource::TOPIC,
            &current,
            &[
                change("retention.ms", op::DELETE, None),
                change("segment.bytes", op::SET, Some("1048576")),
                change("cleanup.policy", op::APPEND, Some("compact")),
            ],
        )
        .unwrap();
        assert_eq!(new.get("retention.ms"), None);
        assert_eq!(new["segment.bytes"], "1048576");
        assert_eq!(new["cleanup.policy"], "delete,compact");
        let new = apply(
            resource::TOPIC,
            &new,
            &[change("cleanup.policy", op::SUBTRACT, Some("delete"))],
        )
        .unwrap();
        assert_eq!(new["cleanup.policy"], "compact");
        let err = apply(
            resource::TOPIC,
            &new,
            &[change("retention.ms", op::APPEND, Some("1"))],
        )
        .unwrap_err();
        assert_eq!(err.0, code::INVALID_CONFIG);
    }
}
