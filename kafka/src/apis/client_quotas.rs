//! DescribeClientQuotas and AlterClientQuotas (KIP-546): what `kafka-configs.sh
//! --entity-type users/clients` and the admin clients use for client quotas — the
//! same quotas REST manages. Entities are `user` and `client-id` components, a null
//! name being the default; the keys served are `producer_byte_rate` and
//! `consumer_byte_rate` (bytes per second). Alter applies each entity's changes all
//! together; an unknown entity type or key is INVALID_REQUEST for that entity.

use kafka_protocol::messages::alter_client_quotas_response as alter_response;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::quotas::{EntityName, QuotaChange, QuotaEntity, QuotaKind};
use troupe_actors::requests::quotas;
use troupe_actors::ErrorKind;

use super::{error_code, Session};

const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
/// DescribeClientQuotas' match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

fn text(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

fn name_of(name: Option<&StrBytes>) -> EntityName {
    match name {
        None => EntityName::Default,
        Some(n) => EntityName::Name(n.to_string()),
    }
}

fn wire_name(name: &EntityName) -> Option<StrBytes> {
    match name {
        EntityName::Default => None,
        EntityName::Name(n) => text(n.clone()),
    }
}

/// An entity's components, as the wire names them.
fn components(entity: &QuotaEntity) -> Vec<(&'static str, &EntityName)> {
    let mut out = Vec::new();
    if let Some(u) = &entity.user {
        out.push((USER, u));
    }
    if let Some(c) = &entity.client_id {
        out.push((CLIENT_ID, c));
    }
    out
}

pub fn describe(
    session: &Session,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let refused = |kind: ErrorKind, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(error_code(kind))
            .with_error_message(text(message))
    };
    for c in &request.components {
        let known_type = [USER, CLIENT_ID].contains(&c.entity_type.as_str());
        let known_match = [MATCH_EXACT, MATCH_DEFAULT, MATCH_ANY].contains(&c.match_type);
        if !known_type || !known_match {
            return refused(
                ErrorKind::InvalidRequest,
                format!(
                    "component '{}' with match type {} is not one served (user, client-id; 0, 1, 2)",
                    c.entity_type.as_str(),
                    c.match_type
                ),
            );
        }
    }
    let matches = |entity: &QuotaEntity| {
        let parts = components(entity);
        let each = request.components.iter().all(|c| {
            let part = parts
                .iter()
                .find(|(t, _)| *t == c.entity_type.as_str())
                .map(|(_, n)| *n);
            match (c.match_type, part) {
                (_, None) => false,
                (MATCH_DEFAULT, Some(n)) => *n == EntityName::Default,
                (MATCH_ANY, Some(n)) => *n != EntityName::Default,
                (_, Some(n)) => c._match.as_ref().map(|m| m.as_str()) == Some(n.display()),
            }
        });
        each && (!request.strict || parts.len() == request.components.len())
    };
    match quotas::describe(&session.engine, &session.context, matches) {
        Ok(found) => {
            let entries = found
                .into_iter()
                .map(|(entity, rates)| {
                    EntryData::default()
                        .with_entity(
                            components(&entity)
                                .into_iter()
                                .map(|(t, n)| {
                                    EntityData::default()
                                        .with_entity_type(StrBytes::from_static_str(t))
                                        .with_entity_name(wire_name(n))
                                })
                                .collect(),
                        )
                        .with_values(
                            rates
                                .into_iter()
                                .map(|(kind, rate)| {
                                    ValueData::default()
                                        .with_key(StrBytes::from_static_str(kind.key()))
                                        .with_value(rate as f64)
                                })
                                .collect(),
                        )
                })
                .collect();
            DescribeClientQuotasResponse::default().with_entries(Some(entries))
        }
        Err(e) => refused(e.kind(), e.to_string()),
    }
}

/// One entry's entity and changes, or why it is refused.
fn changes_of(
    entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
) -> Result<Vec<QuotaChange>, String> {
    let mut entity = QuotaEntity {
        user: None,
        client_id: None,
    };
    for part in &entry.entity {
        let slot = match part.entity_type.as_str() {
            USER => &mut entity.user,
            CLIENT_ID => &mut entity.client_id,
            other => {
                return Err(format!(
                    "entity type '{other}' is not served (user, client-id)"
                ))
            }
        };
        if slot.replace(name_of(part.entity_name.as_ref())).is_some() {
            return Err(format!(
                "entity type '{}' is given twice",
                part.entity_type.as_str()
            ));
        }
    }
    entity.check()?;
    entry
        .ops
        .iter()
        .map(|op| {
            let kind = QuotaKind::of_key(op.key.as_str()).ok_or_else(|| {
                format!(
                    "quota '{}' is not served (producer_byte_rate, consumer_byte_rate)",
                    op.key.as_str()
                )
            })?;
            let rate = if op.remove {
                None
            } else if op.value.is_finite() && op.value >= 1.0 && op.value <= u64::MAX as f64 {
                Some(op.value.round() as u64)
            } else {
                return Err(format!(
                    "{}: {} is not a byte rate",
                    op.key.as_str(),
                    op.value
                ));
            };
            Ok(QuotaChange {
                entity: entity.clone(),
                kind,
                rate,
            })
        })
        .collect()
}

pub async fn alter(
    session: &Session,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let mut results = Vec::with_capacity(request.entries.len());
    for entry in &request.entries {
        let outcome = match changes_of(entry) {
            Err(reason) => Err((ErrorKind::InvalidRequest, reason)),
            Ok(changes) => quotas::alter(
                &session.engine,
                &session.context,
                changes,
                request.validate_only,
            )
            .await
            .map_err(|e| (e.kind(), e.to_string())),
        };
        let result = alter_response::EntryData::default().with_entity(
            entry
                .entity
                .iter()
                .map(|e| {
                    alter_response::EntityData::default()
                        .with_entity_type(e.entity_type.clone())
                        .with_entity_name(e.entity_name.clone())
                })
                .collect(),
        );
        results.push(match outcome {
            Ok(()) => result,
            Err((kind, message)) => result
                .with_error_code(error_code(kind))
                .with_error_message(text(message)),
        });
    }
    AlterClientQuotasResponse::default().with_entries(results)
}
