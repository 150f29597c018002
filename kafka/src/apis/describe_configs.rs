//! DescribeConfigs: a topic's effective configs (its overrides, else the broker's
//! defaults, else the built-in ones) and this broker's settings behind the topic
//! defaults, by their broker keys — as the request layer's `configs` answers them,
//! with Kafka's sources (TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG), the
//! values each one shadows when synonyms are asked for, and from v3 each config's
//! type and, when asked, its documentation. Broker settings are read-only here (they
//! change in the configuration file, not at run time); none is sensitive. The empty
//! broker name, Kafka's cluster-wide dynamic defaults, has no configs. A resource
//! that cannot be described gets its own error: UNKNOWN_TOPIC_OR_PARTITION,
//! INVALID_TOPIC_EXCEPTION, or INVALID_REQUEST for another broker's id or a resource
//! type not served.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::requests::configs;
use troupe_actors::topic_config::ConfigEntry;

use super::admin::{config_type, documentation, source_id, ConfigResource, Refusal};
use super::{Session, Since};

/// What the request asks to see of each config.
#[derive(Debug, Clone, Copy)]
struct Detail {
    synonyms: bool,
    documentation: bool,
    version: i16,
}

pub async fn handle(
    session: &Session,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let detail = Detail {
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
        version,
    };
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let described = describe(session, &resource).await;
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        results.push(match described {
            Ok((entries, read_only)) => {
                let wanted = keys(&resource);
                result.with_configs(
                    entries
                        .into_iter()
                        .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
                        .map(|e| entry(e, read_only, detail))
                        .collect(),
                )
            }
            Err(refusal) => result
                .with_error_code(refusal.code)
                .with_error_message(refusal.message()),
        });
    }
    DescribeConfigsResponse::default().with_results(results)
}

/// The resource's entries, and whether they are read-only.
async fn describe(
    session: &Session,
    resource: &DescribeConfigsResource,
) -> Result<(Vec<ConfigEntry>, bool), Refusal> {
    let image = session.engine.image();
    let (engine, ctx) = (&session.engine, &session.context);
    match ConfigResource::parse(&image, resource.resource_type, &resource.resource_name)? {
        ConfigResource::Topic(name) => {
            Ok((configs::topic_configs(engine, ctx, &name).await?, false))
        }
        ConfigResource::ThisBroker => Ok((configs::broker_configs(engine, ctx).await?, true)),
        ConfigResource::BrokerDefaults => Ok((Vec::new(), true)),
    }
}

/// The config names asked for; `None` for all (Kafka reads an empty list as all too).
fn keys(resource: &DescribeConfigsResource) -> Option<Vec<String>> {
    match &resource.configuration_keys {
        Some(keys) if !keys.is_empty() => Some(keys.iter().map(|k| k.to_string()).collect()),
        _ => None,
    }
}

fn entry(e: ConfigEntry, read_only: bool, detail: Detail) -> DescribeConfigsResourceResult {
    let synonyms = if detail.synonyms {
        e.synonyms
            .iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_value(Some(StrBytes::from_string(value.clone())))
                    .with_source(source_id(*source))
            })
            .collect()
    } else {
        Vec::new()
    };
    let kind = config_type(&e.name).unwrap_or(0);
    let doc = documentation(&e.name)
        .filter(|_| detail.documentation)
        .map(StrBytes::from_static_str);
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(e.name))
        .with_value(Some(StrBytes::from_string(e.value)))
        .with_read_only(read_only)
        .with_config_source(source_id(e.source))
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
        .since(detail.version, 3, |m| {
            m.with_config_type(kind).with_documentation(doc)
        })
}
