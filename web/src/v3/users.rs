//! `/v3/clusters/{cluster_id}/users`: users and their SCRAM credentials. Confluent's
//! v3 has no user API (Confluent Platform manages users elsewhere); this one follows
//! v3's shapes and Kafka's model (DescribeUserScramCredentials and
//! AlterUserScramCredentials: a user has a credential per mechanism, each with its
//! iterations). A password goes in, and nothing of it comes out: a user is its name
//! and its mechanisms with their iterations.
//!
//! - `GET …/users` lists them; `GET …/users/{user}` describes one.
//! - `POST …/users` `{"user_name", "password", "mechanisms"?, "iterations"?}` creates
//!   one (409 / 40908 if it exists); both SCRAM mechanisms and 4096 iterations unless
//!   told.
//! - `PUT …/users/{user}` `{"password", "mechanisms"?, "iterations"?}` sets its
//!   password for those mechanisms (creating the user if need be).
//! - `DELETE …/users/{user}` removes it; `?mechanism=SCRAM-SHA-256` only that
//!   credential.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::auth::ScramMechanism;
use troupe_actors::requests::users::{self, PasswordSpec, UserDescription, DEFAULT_ITERATIONS};

use super::{check_cluster, cluster_body, Urls};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn user_json(urls: &Urls, user: &UserDescription) -> Value {
    urls.resource(
        "KafkaUser",
        &format!("/users/{}", user.name),
        &format!("/user={}", user.name),
        json!({
            "cluster_id": urls.cluster_id,
            "user_name": user.name,
            "credentials": user.credentials.iter().map(|c| json!({
                "mechanism": c.mechanism.name(),
                "iterations": c.iterations,
            })).collect::<Vec<_>>(),
        }),
    )
}

/// A password and the credentials to make of it. The password is not kept in any
/// form that prints.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordRequest {
    password: String,
    #[serde(default)]
    mechanisms: Option<Vec<String>>,
    #[serde(default)]
    iterations: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    user_name: String,
    password: String,
    #[serde(default)]
    mechanisms: Option<Vec<String>>,
    #[serde(default)]
    iterations: Option<u32>,
}

fn mechanism(name: &str) -> ApiResult<ScramMechanism> {
    ScramMechanism::parse(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{name} is not a SCRAM mechanism (SCRAM-SHA-256, SCRAM-SHA-512)"
        ))
    })
}

fn spec(mechanisms: Option<Vec<String>>, iterations: Option<u32>) -> ApiResult<PasswordSpec> {
    let mut spec = PasswordSpec {
        iterations: iterations.unwrap_or(DEFAULT_ITERATIONS),
        ..PasswordSpec::default()
    };
    if let Some(names) = mechanisms {
        spec.mechanisms = names
            .iter()
            .map(|n| mechanism(n))
            .collect::<ApiResult<_>>()?;
    }
    Ok(spec)
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    let urls = Urls::new(&req, &state);
    let data = users::list(&state.engine, &caller)?
        .iter()
        .map(|u| user_json(&urls, u))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list("KafkaUserList", "/users", data)))
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let user = users::describe(&state.engine, &caller, &name)?;
    Ok(HttpResponse::Ok().json(user_json(&Urls::new(&req, &state), &user)))
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let request: CreateUserRequest = cluster_body(&state, &path, body).await?;
    let spec = spec(request.mechanisms, request.iterations)?;
    let user = users::create(
        &state.engine,
        &caller,
        &request.user_name,
        &request.password,
        &spec,
    )
    .await?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Created()
        .insert_header(("Location", urls.url(&format!("/users/{}", user.name))))
        .json(user_json(&urls, &user)))
}

pub async fn set_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (cluster_id, name) = path.into_inner();
    let request: PasswordRequest = cluster_body(&state, &cluster_id, body).await?;
    let spec = spec(request.mechanisms, request.iterations)?;
    let user = users::set_password(&state.engine, &caller, &name, &request.password, &spec).await?;
    Ok(HttpResponse::Ok().json(user_json(&Urls::new(&req, &state), &user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    mechanism: Option<String>,
}

pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: web::Query<DeleteQuery>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let mechanism = query.mechanism.as_deref().map(mechanism).transpose()?;
    users::delete(&state.engine, &caller, &name, mechanism).await?;
    Ok(HttpResponse::NoContent().finish())
}
