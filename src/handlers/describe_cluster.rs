//! DescribeCluster (key 60): the live brokers, the controller and the cluster id, as
//! kafka-python 3.x's admin client asks for them.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::cluster_authorized_operations;
use super::Context;

/// Answers a DescribeCluster request.
pub fn handle(
    ctx: &Context,
    version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let view = ctx.broker.metadata.snapshot();
    let brokers = view
        .brokers
        .values()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    let cluster_id = view
        .cluster_id
        .clone()
        .unwrap_or_else(|| ctx.broker.cluster_id.clone());
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(cluster_id))
        .with_controller_id(BrokerId(
            view.controller.as_ref().map_or(-1, |c| c.broker_id),
        ))
        .with_brokers(brokers);
    if version >= 1 {
        response.endpoint_type = request.endpoint_type;
    }
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = cluster_authorized_operations();
    }
    response
}
