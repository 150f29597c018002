//! Confluent REST Proxy v3: clusters, brokers, topics, partitions, topic configs,
//! produce and consumer groups; and users (SCRAM credentials), which Confluent's v3
//! does not have. Every resource carries `kind` and `metadata` (`self` URL and a CRN), and
//! links to related resources as `{"related": url}`, as Confluent's do; every link
//! handed out answers a GET (cluster configs and reassignments are empty lists:
//! one node has none). Request bodies are parsed strictly: an unknown field is a 400
//! naming it, an empty body a 422, as Confluent's.

pub mod acls;
pub mod client_quotas;
pub mod clusters;
pub mod configs;
pub mod consumer_groups;
pub mod partitions;
pub mod records;
pub mod topics;
pub mod users;

use actix_web::{web, HttpRequest};
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let c = "/v3/clusters/{cluster_id}";
    cfg.route("/v3/clusters", web::get().to(clusters::list))
        .route(c, web::get().to(clusters::get))
        .route(
            &format!("{c}/quorum"),
            web::get().to(clusters::describe_quorum),
        )
        .route(
            &format!("{c}/brokers"),
            web::get().to(clusters::list_brokers),
        )
        .route(
            &format!("{c}/brokers/{{broker_id}}"),
            web::get().to(clusters::get_broker),
        )
        .route(
            &format!("{c}/brokers/{{broker_id}}/configs"),
            web::get().to(clusters::broker_configs),
        )
        .route(
            &format!("{c}/brokers/{{broker_id}}/configs/{{name}}"),
            web::get().to(clusters::broker_config),
        )
        .route(
            &format!("{c}/brokers/{{broker_id}}/partition-replicas"),
            web::get().to(partitions::broker_replicas),
        )
        .route(&format!("{c}/acls"), web::get().to(acls::list))
        .route(&format!("{c}/acls"), web::post().to(acls::create))
        .route(&format!("{c}/acls"), web::delete().to(acls::delete))
        .route(
            &format!("{c}/acls:batch"),
            web::post().to(acls::create_batch),
        )
        .route(
            &format!("{c}/client-quotas"),
            web::get().to(client_quotas::list),
        )
        .route(
            &format!("{c}/client-quotas"),
            web::post().to(client_quotas::alter),
        )
        .route(&format!("{c}/users"), web::get().to(users::list))
        .route(&format!("{c}/users"), web::post().to(users::create))
        .route(&format!("{c}/users/{{user}}"), web::get().to(users::get))
        .route(
            &format!("{c}/users/{{user}}"),
            web::put().to(users::set_password),
        )
        .route(
            &format!("{c}/users/{{user}}"),
            web::delete().to(users::delete),
        )
        .route(
            &format!("{c}/broker-configs"),
            web::get().to(clusters::cluster_configs),
        )
        // `-` means every topic (and partition) in Confluent's paths: these come
        // before the `{topic}` routes, which would take `-` as a topic name.
        .route(
            &format!("{c}/topics/-/configs"),
            web::get().to(configs::list_all),
        )
        .route(
            &format!("{c}/topics/-/partitions/-/reassignment"),
            web::get().to(partitions::all_reassignments),
        )
        .route(
            &format!("{c}/topics/{{topic}}/partitions/-/reassignment"),
            web::get().to(partitions::topic_reassignments),
        )
        .route(&format!("{c}/topics"), web::get().to(topics::list))
        .route(&format!("{c}/topics"), web::post().to(topics::create))
        .route(&format!("{c}/topics/{{topic}}"), web::get().to(topics::get))
        .route(
            &format!("{c}/topics/{{topic}}"),
            web::delete().to(topics::delete),
        )
        .route(
            &format!("{c}/topics/{{topic}}"),
            web::patch().to(topics::update),
        )
        .route(
            &format!("{c}/topics/{{topic}}/partitions"),
            web::get().to(partitions::list),
        )
        .route(
            &format!("{c}/topics/{{topic}}/partitions/{{partition}}"),
            web::get().to(partitions::get),
        )
        .route(
            &format!("{c}/topics/{{topic}}/partitions/{{partition}}/replicas"),
            web::get().to(partitions::replicas),
        )
        .route(
            &format!("{c}/topics/{{topic}}/partitions/{{partition}}/replicas/{{broker_id}}"),
            web::get().to(partitions::replica),
        )
        .route(
            &format!("{c}/topics/{{topic}}/partitions/{{partition}}/reassignment"),
            web::get().to(partitions::reassignment),
        )
        .route(
            &format!("{c}/topics/{{topic}}/partitions/{{partition}}/reassignment"),
            web::post().to(partitions::reassign),
        )
        .route(
            &format!("{c}/topics/{{topic}}/partitions/{{partition}}/offset"),
            web::get().to(partitions::offsets),
        )
        .route(
            &format!("{c}/topics/{{topic}}/configs"),
            web::get().to(configs::list),
        )
        .route(
            &format!("{c}/topics/{{topic}}/configs:alter"),
            web::post().to(configs::alter),
        )
        .route(
            &format!("{c}/topics/{{topic}}/configs/{{name}}"),
            web::get().to(configs::get),
        )
        .route(
            &format!("{c}/topics/{{topic}}/configs/{{name}}"),
            web::put().to(configs::update),
        )
        .route(
            &format!("{c}/topics/{{topic}}/configs/{{name}}"),
            web::delete().to(configs::reset),
        )
        .route(
            &format!("{c}/topics/{{topic}}/records"),
            web::post().to(records::produce),
        )
        .route(
            &format!("{c}/topics/{{topic}}/records:batch"),
            web::post().to(records::produce_batch),
        );
    consumer_groups::configure(cfg);
}

/// `scheme://host` of the request, for the `self` and `related` links.
pub fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// Parses an admin request body strictly (the request structs deny unknown fields).
/// An empty body is Confluent's 422 (its bean validation of a required body), not a
/// malformed-JSON 400.
/// The JSON body of a request to cluster `cluster_id`: the cluster checked, then
/// the body read (within `max.request.bytes`) and parsed.
pub async fn cluster_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    cluster_id: &str,
    body: actix_web::web::Payload,
) -> ApiResult<T> {
    check_cluster(state, cluster_id)?;
    let body = crate::read_body(body, state.limits.max_request_bytes).await?;
    parse_body(&body)
}

pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::unprocessable(
            crate::error::codes::EMPTY_BODY,
            "Payload error. Request body is empty. Data is required.",
        ));
    }
    crate::json::parse(body)
}

/// Refuses a broker id that is not this broker's.
pub fn check_broker(state: &AppState, broker_id: i32) -> ApiResult<()> {
    let known = state
        .engine
        .image()
        .brokers
        .contains_key(&troupe_actors::ids::NodeId::new(broker_id));
    if !known {
        return Err(ApiError::not_found(format!(
            "Broker {broker_id} cannot be found."
        )));
    }
    Ok(())
}

/// Refuses a cluster id that is not this cluster's.
pub fn check_cluster(state: &AppState, cluster_id: &str) -> ApiResult<()> {
    if cluster_id != state.cluster_id {
        return Err(ApiError::cluster_not_found(cluster_id));
    }
    Ok(())
}

/// Links and names for one cluster's resources.
pub struct Urls {
    pub base: String,
    pub cluster_id: String,
}

impl Urls {
    pub fn new(req: &HttpRequest, state: &AppState) -> Self {
        Urls {
            base: base_url(req),
            cluster_id: state.cluster_id.clone(),
        }
    }

    /// `<base>/v3/clusters/<id><path>`
    pub fn url(&self, path: &str) -> String {
        format!("{}/v3/clusters/{}{}", self.base, self.cluster_id, path)
    }

    pub fn related(&self, path: &str) -> Value {
        json!({ "related": self.url(path) })
    }

    /// A single resource: `kind`, `metadata` and the given fields.
    pub fn resource(&self, kind: &str, path: &str, crn_suffix: &str, fields: Value) -> Value {
        let mut obj = Map::new();
        obj.insert("kind".into(), json!(kind));
        obj.insert(
            "metadata".into(),
            json!({
                "self": self.url(path),
                "resource_name": format!("crn:///kafka={}{}", self.cluster_id, crn_suffix),
            }),
        );
        if let Value::Object(fields) = fields {
            obj.extend(fields);
        }
        Value::Object(obj)
    }

    pub fn list(&self, kind: &str, path: &str, data: Vec<Value>) -> Value {
        json!({
            "kind": kind,
            "metadata": { "self": self.url(path), "next": null },
            "data": data,
        })
    }
}
