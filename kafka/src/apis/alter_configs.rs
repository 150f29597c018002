//! AlterConfigs (the legacy, whole-set form): a topic's overrides become exactly the
//! configs given — every override not given is removed — applied by the topic
//! registry all together or not at all (`requests::configs::alter_topic_configs`),
//! which checks each name and value (INVALID_CONFIG). The replacement is one change
//! to the registry (a removal for every topic config not given), so a concurrent
//! change to the same topic cannot be half kept. `validate_only` checks without
//! applying. Broker resources are refused with INVALID_REQUEST: Troupe's broker
//! settings are read at startup and have no dynamic form. A null value, a config
//! given twice, a resource given twice or a resource type not served are
//! INVALID_REQUEST, as Kafka answers them.

use futures::future::join_all;
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use troupe_actors::broker::ConfigChange;
use troupe_actors::requests::configs;
use troupe_actors::topic_config::TOPIC_CONFIGS;

use super::admin::{broker_configs_are_static, duplicates, outcome, ConfigResource, Refusal};
use super::Session;

pub async fn handle(
    session: &Session,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let ids: Vec<String> = request
        .resources
        .iter()
        .map(|r| format!("{}/{}", r.resource_type, r.resource_name))
        .collect();
    let twice: Vec<String> = duplicates(ids.iter().map(String::as_str))
        .into_iter()
        .map(str::to_string)
        .collect();
    let validate_only = request.validate_only;
    let answers = request
        .resources
        .into_iter()
        .zip(ids)
        .map(|(resource, id)| {
            let named_twice = twice.contains(&id);
            async move {
                let altered = if named_twice {
                    Err(Refusal::invalid_request(
                        "each resource must appear at most once",
                    ))
                } else {
                    alter(session, &resource, validate_only).await
                };
                let (code, message) = outcome(&altered);
                AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name)
                    .with_error_code(code)
                    .with_error_message(message)
            }
        });
    AlterConfigsResponse::default().with_responses(join_all(answers).await)
}

async fn alter(
    session: &Session,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Refusal> {
    let image = session.engine.image();
    let topic =
        match ConfigResource::parse(&image, resource.resource_type, &resource.resource_name)? {
            ConfigResource::Topic(name) => name,
            ConfigResource::ThisBroker | ConfigResource::BrokerDefaults => {
                return Err(broker_configs_are_static())
            }
        };
    let given: Vec<(String, Option<String>)> = resource
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
        .collect();
    let changes = replacement(&given)?;
    configs::alter_topic_configs(
        &session.engine,
        &session.context,
        &topic,
        changes,
        validate_only,
    )
    .await?;
    Ok(())
}

/// The changes that make a topic's overrides exactly `given`: each one set, every
/// other topic config removed.
fn replacement(given: &[(String, Option<String>)]) -> Result<Vec<ConfigChange>, Refusal> {
    let nulls: Vec<&str> = given
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(Refusal::invalid_request(format!(
            "null value not supported for: {}",
            nulls.join(", ")
        )));
    }
    let twice = duplicates(given.iter().map(|(n, _)| n.as_str()));
    if !twice.is_empty() {
        return Err(Refusal::invalid_request(format!(
            "config(s) given more than once: {}",
            twice.join(", ")
        )));
    }
    let set = given.iter().map(|(name, value)| ConfigChange {
        name: name.clone(),
        value: value.clone(),
    });
    let removed = TOPIC_CONFIGS
        .iter()
        .filter(|def| !given.iter().any(|(n, _)| n == def.name))
        .map(|def| ConfigChange {
            name: def.name.to_string(),
            value: None,
        });
    Ok(set.chain(removed).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overrides_become_exactly_what_is_given() {
        let given = vec![("retention.ms".to_string(), Some("1000".to_string()))];
        let changes = replacement(&given).unwrap();
        assert_eq!(changes.len(), TOPIC_CONFIGS.len());
        assert_eq!(
            changes[0],
            ConfigChange {
                name: "retention.ms".into(),
                value: Some("1000".into())
            }
        );
        assert!(changes[1..].iter().all(|c| c.value.is_none()));
        assert!(!changes[1..].iter().any(|c| c.name == "retention.ms"));
        let cleared = replacement(&[]).unwrap();
        assert!(cleared.iter().all(|c| c.value.is_none()));
    }

    #[test]
    fn nulls_and_duplicates_are_invalid_requests() {
        let null = replacement(&[("retention.ms".into(), None)]);
        assert_eq!(null.map_err(|r| r.code), Err(42));
        let twice = replacement(&[
            ("retention.ms".into(), Some("1".into())),
            ("retention.ms".into(), Some("2".into())),
        ]);
        assert_eq!(twice.map_err(|r| r.code), Err(42));
    }
}
