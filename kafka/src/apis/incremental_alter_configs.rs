//! IncrementalAlterConfigs: per config of a topic, SET a value, DELETE the override
//! (back to the broker's default), or APPEND to / SUBTRACT from a list config
//! (`cleanup.policy`) — applied by the topic registry all together or not at all
//! (`requests::configs::alter_topic_configs`), which checks each name and value
//! (INVALID_CONFIG). `validate_only` checks without applying.
//!
//! APPEND and SUBTRACT start from the topic's effective value (its override, else
//! the broker's default), read just before the change is made; Kafka starts from the
//! override, else the built-in default, so the two differ only where the broker sets
//! its own default. A change by another client between that read and the write is
//! not seen by the append (Kafka's controller applies the operation itself).
//!
//! As Kafka answers them: APPEND or SUBTRACT on a config that is not a list is
//! INVALID_CONFIG; an unknown operation, a null value for anything but DELETE, a
//! config given twice, a resource given twice and a resource type not served are
//! INVALID_REQUEST. Broker resources are refused with INVALID_REQUEST: Troupe's
//! broker settings are read at startup and have no dynamic form.

use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use troupe_actors::broker::ConfigChange;
use troupe_actors::requests::configs;
use troupe_actors::topic_config::{topic_config_def, ConfigEntry, ConfigType};
use troupe_actors::ErrorKind;

use super::admin::{alter_each, refuse_repeated_configs, topic_to_alter, Refusal};
use super::Session;

/// One operation on one config, as Kafka's `AlterConfigOp.OpType` numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// 0
    Set(String),
    /// 1
    Delete,
    /// 2: the comma-separated items not in the list yet are added at its end.
    Append(String),
    /// 3: the comma-separated items are removed from the list.
    Subtract(String),
}

impl Op {
    fn parse(code: i8, value: Option<String>, name: &str) -> Result<Op, Refusal> {
        match (code, value) {
            (1, _) => Ok(Op::Delete),
            (0, Some(v)) => Ok(Op::Set(v)),
            (2, Some(v)) => Ok(Op::Append(v)),
            (3, Some(v)) => Ok(Op::Subtract(v)),
            (0 | 2 | 3, None) => Err(Refusal::invalid_request(format!(
                "null value not supported for: {name}"
            ))),
            (other, _) => Err(Refusal::invalid_request(format!(
                "unknown operation type {other} for config {name}"
            ))),
        }
    }
}

pub async fn handle(
    session: &Session,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
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
    IncrementalAlterConfigsResponse::default().with_responses(responses.collect())
}

async fn alter(
    session: &Session,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Refusal> {
    let ops: Vec<(String, Op)> = resource
        .configs
        .iter()
        .map(|c| {
            let name = c.name.to_string();
            let value = c.value.as_ref().map(|v| v.to_string());
            Op::parse(c.config_operation, value, &name).map(|op| (name, op))
        })
        .collect::<Result<_, _>>()?;
    refuse_repeated_configs(ops.iter().map(|(n, _)| n.as_str()))?;
    let image = session.engine.image();
    let topic = topic_to_alter(&image, resource.resource_type, &resource.resource_name)?;
    let (engine, ctx) = (&session.engine, &session.context);
    let lists_touched = ops
        .iter()
        .any(|(_, op)| matches!(op, Op::Append(_) | Op::Subtract(_)));
    let current = if lists_touched {
        configs::topic_configs(engine, ctx, &topic).await?
    } else {
        Vec::new()
    };
    let changes = changes(&ops, &current)?;
    configs::alter_topic_configs(engine, ctx, &topic, changes, validate_only).await?;
    Ok(())
}

/// The changes `ops` make to a topic whose effective configs are `current` (needed
/// only for APPEND and SUBTRACT). Names are checked by the registry, except that
/// APPEND and SUBTRACT need a list config to work on.
fn changes(ops: &[(String, Op)], current: &[ConfigEntry]) -> Result<Vec<ConfigChange>, Refusal> {
    ops.iter()
        .map(|(name, op)| {
            let value = match op {
                Op::Set(v) => Some(v.clone()),
                Op::Delete => None,
                Op::Append(items) | Op::Subtract(items) => {
                    let is_list = topic_config_def(name)
                        .is_some_and(|d| matches!(d.kind, ConfigType::List(_)));
                    if !is_list {
                        let verb = if matches!(op, Op::Append(_)) {
                            "APPEND"
                        } else {
                            "SUBTRACT"
                        };
                        return Err(Refusal::of_kind(
                            ErrorKind::InvalidConfig,
                            format!("cannot {verb} to config {name}: it is not a list"),
                        ));
                    }
                    let now = current
                        .iter()
                        .find(|e| e.name == *name)
                        .map_or("", |e| e.value.as_str());
                    Some(edit_list(now, items, matches!(op, Op::Append(_))))
                }
            };
            Ok(ConfigChange {
                name: name.clone(),
                value,
            })
        })
        .collect()
}

/// `list` with `items` appended (those not in it yet, in order) or subtracted.
fn edit_list(list: &str, items: &str, append: bool) -> String {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut out = split(list);
    for item in split(items) {
        if append && !out.contains(&item) {
            out.push(item);
        } else if !append {
            out.retain(|i| *i != item);
        }
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use troupe_actors::topic_config::ConfigSource;

    fn current(policy: &str) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            name: "cleanup.policy".into(),
            value: policy.into(),
            source: ConfigSource::DefaultConfig,
            synonyms: Vec::new(),
        }]
    }

    fn change(name: &str, value: Option<&str>) -> ConfigChange {
        ConfigChange {
            name: name.into(),
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn set_and_delete_become_overrides_and_removals() {
        let ops = vec![
            ("retention.ms".to_string(), Op::Set("1000".into())),
            ("segment.bytes".to_string(), Op::Delete),
        ];
        assert_eq!(
            changes(&ops, &[]),
            Ok(vec![
                change("retention.ms", Some("1000")),
                change("segment.bytes", None)
            ])
        );
    }

    #[test]
    fn append_and_subtract_edit_the_effective_list() {
        let append = vec![("cleanup.policy".to_string(), Op::Append("compact".into()))];
        assert_eq!(
            changes(&append, &current("delete")),
            Ok(vec![change("cleanup.policy", Some("delete,compact"))])
        );
        // Items already there are not added twice.
        assert_eq!(
            changes(&append, &current("compact,delete")),
            Ok(vec![change("cleanup.policy", Some("compact,delete"))])
        );
        let subtract = vec![("cleanup.policy".to_string(), Op::Subtract("delete".into()))];
        assert_eq!(
            changes(&subtract, &current("delete,compact")),
            Ok(vec![change("cleanup.policy", Some("compact"))])
        );
        // Emptied: the registry refuses an empty cleanup.policy.
        assert_eq!(
            changes(&subtract, &current("delete")),
            Ok(vec![change("cleanup.policy", Some(""))])
        );
        assert_eq!(edit_list("a, b", "c,a,,d", true), "a,b,c,d");
        assert_eq!(edit_list("a,b,c", "b, x", false), "a,c");
    }

    #[test]
    fn only_lists_take_append_and_subtract() {
        for op in [Op::Append("1".into()), Op::Subtract("1".into())] {
            let refused = changes(&[("retention.ms".to_string(), op)], &[]);
            assert_eq!(refused.map_err(|r| r.code), Err(40));
        }
        let unknown = changes(&[("no.such".to_string(), Op::Append("x".into()))], &[]);
        assert_eq!(unknown.map_err(|r| r.code), Err(40));
    }

    #[test]
    fn operations_are_parsed_as_kafka_numbers_them() {
        assert_eq!(Op::parse(0, Some("v".into()), "k"), Ok(Op::Set("v".into())));
        assert_eq!(Op::parse(1, None, "k"), Ok(Op::Delete));
        assert_eq!(Op::parse(1, Some("ignored".into()), "k"), Ok(Op::Delete));
        assert_eq!(
            Op::parse(2, Some("v".into()), "k"),
            Ok(Op::Append("v".into()))
        );
        assert_eq!(
            Op::parse(3, Some("v".into()), "k"),
            Ok(Op::Subtract("v".into()))
        );
        for (code, value) in [
            (0, None),
            (2, None),
            (3, None),
            (4, Some("v")),
            (-1, Some("v")),
        ] {
            let parsed = Op::parse(code, value.map(str::to_string), "k");
            assert_eq!(parsed.map_err(|r| r.code), Err(42), "{code}");
        }
    }
}
