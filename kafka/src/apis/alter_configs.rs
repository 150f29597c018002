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

use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use troupe_actors::broker::ConfigChange;
use troupe_actors::requests::configs;
use troupe_actors::topic_config::TOPIC_CONFIGS;

use super::admin::{alter_each, refuse_repeated_configs, topic_to_alter, Refusal};
use super::Session;

pub async fn handle(
    session: &Session,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let validate_only = request.validate_only;
    let answers = alter_each(
        request.resources,
        |r| (r.resource_type, r.resource_name.clone()),
        |r| async move { alter(session, &r, validate_only).await },
    )
    .await;
    let responses = answers.into_iter().map(|a| {
        AlterConfigsResourceResponse::default()
            .with_resource_type(a.resource_type)
            .with_resource_name(a.resource_name)
            .with_error_code(a.error_code)
            .with_error_message(a.error_message)
    });
    AlterConfigsResponse::default().with_responses(responses.collect())
}

async fn alter(
    session: &Session,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Refusal> {
    let image = session.engine.image();
    let topic = topic_to_alter(&image, resource.resource_type, &resource.resource_name)?;
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
    refuse_repeated_configs(given.iter().map(|(n, _)| n.as_str()))?;
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
