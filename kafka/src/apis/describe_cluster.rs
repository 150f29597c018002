//! DescribeCluster: the cluster id, the active controller and every broker with its
//! endpoint on the listener the client came through — read from the metadata image,
//! as Metadata's broker list is, so a cluster lists every broker with no change
//! here. Brokers without an endpoint on this listener are left out (the client could
//! not reach them through it). This is a broker's endpoint: a request for the
//! controllers' (endpoint type 2, KIP-919) is MISMATCHED_ENDPOINT_TYPE, as Kafka's
//! brokers answer it. No broker is ever fenced here, and authorized operations are
//! not computed (no authorizer yet): the field keeps Kafka's "not provided".

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::{advertised_brokers, Session, Since};

/// Kafka's `EndpointType.BROKER`, the endpoints this listener is.
const BROKER_ENDPOINTS: i8 = 1;
/// Kafka's MISMATCHED_ENDPOINT_TYPE.
const MISMATCHED_ENDPOINT_TYPE: i16 = 114;

pub fn handle(
    session: &Session,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let image = session.engine.image();
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(image.cluster_id.clone()))
        .with_controller_id(BrokerId(image.controller_id.get()))
        .since(version, 1, |m| m.with_endpoint_type(BROKER_ENDPOINTS));
    if request.endpoint_type != BROKER_ENDPOINTS {
        return response
            .with_error_code(MISMATCHED_ENDPOINT_TYPE)
            .with_error_message(Some(StrBytes::from_string(format!(
                "endpoint type {} was asked of a broker's endpoint (type {BROKER_ENDPOINTS})",
                request.endpoint_type
            ))));
    }
    let brokers = advertised_brokers(session, &image)
        .map(|(id, host, port)| {
            DescribeClusterBroker::default()
                .with_broker_id(id)
                .with_host(host)
                .with_port(port)
        })
        .collect();
    response.with_brokers(brokers)
}
