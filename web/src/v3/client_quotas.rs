//! `/v3/clusters/{cluster_id}/client-quotas`: Kafka's client quotas over REST
//! (Confluent v3 has none; these follow `kafka-configs.sh`'s model and names).
//!
//! - `GET …/client-quotas` lists every entity's quotas:
//!   `{"entity": {"user": "alice", "client_id": "<default>"}, "quotas":
//!   {"producer_byte_rate": 1048576}}` — a component left out is not part of the
//!   entity; `<default>` is the default user or client id.
//! - `POST …/client-quotas` `{"entity": {...}, "quotas": {"producer_byte_rate": N,
//!   "consumer_byte_rate": null}}` sets each quota given a number (bytes per second)
//!   and removes each given `null`, all together → 204.
//!
//! Reading needs DescribeConfigs on the cluster, changing AlterConfigs (Kafka's rights).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use troupe_actors::quotas::{EntityName, QuotaChange, QuotaEntity, QuotaKind};
use troupe_actors::requests::quotas;

use super::{check_cluster, cluster_body, Urls};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const DEFAULT: &str = "<default>";

fn entity_json(entity: &QuotaEntity) -> Value {
    let mut out = Map::new();
    if let Some(u) = &entity.user {
        out.insert("user".into(), json!(u.display()));
    }
    if let Some(c) = &entity.client_id {
        out.insert("client_id".into(), json!(c.display()));
    }
    Value::Object(out)
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    let urls = Urls::new(&req, &state);
    let data = quotas::describe(&state.engine, &caller, |_| true)?
        .into_iter()
        .map(|(entity, rates)| {
            let rates: Map<String, Value> = rates
                .into_iter()
                .map(|(kind, rate)| (kind.key().to_string(), json!(rate)))
                .collect();
            json!({"kind": "KafkaClientQuota", "entity": entity_json(&entity), "quotas": rates})
        })
        .collect();
    Ok(HttpResponse::Ok().json(urls.list("KafkaClientQuotaList", "/client-quotas", data)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityBody {
    user: Option<String>,
    client_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlterBody {
    entity: EntityBody,
    quotas: BTreeMap<String, Option<u64>>,
    #[serde(default)]
    validate_only: bool,
}

fn name(n: String) -> EntityName {
    if n == DEFAULT {
        EntityName::Default
    } else {
        EntityName::Name(n)
    }
}

pub async fn alter(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let wanted: AlterBody = cluster_body(&state, &path, body).await?;
    let entity = QuotaEntity {
        user: wanted.entity.user.map(name),
        client_id: wanted.entity.client_id.map(name),
    };
    entity.check().map_err(ApiError::bad_request)?;
    if wanted.quotas.is_empty() {
        return Err(ApiError::bad_request("no quotas given"));
    }
    let changes = wanted
        .quotas
        .into_iter()
        .map(|(key, rate)| {
            let kind = QuotaKind::of_key(&key).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "quota '{key}' is not one of producer_byte_rate, consumer_byte_rate"
                ))
            })?;
            Ok(QuotaChange {
                entity: entity.clone(),
                kind,
                rate,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    quotas::alter(&state.engine, &caller, changes, wanted.validate_only).await?;
    Ok(HttpResponse::NoContent().finish())
}
