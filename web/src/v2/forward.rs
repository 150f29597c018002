//! A v2 consumer instance lives on the node that created it, as Confluent's REST
//! Proxy pins it; a request for it that reaches another node (through a load
//! balancer, say) is forwarded there. The instance is the HTTP client's session, not
//! cluster data, so the whole request travels — to each other live broker's `HTTP`
//! endpoint (registered in the metadata like its Kafka listener), over `https://`
//! when this node's HTTP listener is, until one does not answer "no such instance" —
//! and its answer comes back as it was.
//!
//! The node that forwards has authenticated the caller (a password, a session
//! cookie, a client certificate); the request carries who the caller is and where
//! it came from, signed with the cluster's forwarding key
//! ([`troupe_actors::auth::forwarding`]), and the serving node takes that identity
//! (for its ACLs and quotas) only when the signature holds. A forged or stale claim
//! is 401. Credentials themselves never travel on.
//!
//! A forwarded request carries `troupe-forwarded-by: <node id>` and is only ever
//! served where it lands, so nothing travels twice. A request for an instance this
//! node has is never forwarded.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};
use base64::Engine as _;
use troupe_actors::auth::forwarding::Claim;
use troupe_actors::requests::{consumers, Listener};

use crate::state::AppState;
use crate::v2::consumer_error;

/// Marks a request forwarded from another node: served here, never sent on.
pub const FORWARDED_HEADER: &str = "troupe-forwarded-by";
/// When it was forwarded (ms since the Unix epoch).
const AT_HEADER: &str = "troupe-forwarded-at";
/// The caller's user name, base64 (absent without authentication).
const USER_HEADER: &str = "troupe-forwarded-user";
/// The caller's address.
const FOR_HEADER: &str = "troupe-forwarded-for";
/// The claim's signature.
const SIGNATURE_HEADER: &str = "troupe-forwarded-signature";
/// The listener name a broker's HTTP endpoint is registered under.
pub const HTTP_LISTENER: &str = "HTTP";
/// The time limit of a forwarded request (a records poll long-polls up to its own
/// timeout, which stays well below this).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest forwarded body, either way.
const MAX_FORWARD_BYTES: u64 = 64 << 20;

/// How this node reaches the others' HTTP listeners.
#[derive(Clone)]
pub struct Forwarder {
    agent: ureq::Agent,
    scheme: &'static str,
}

impl Forwarder {
    /// Over `https://` with `https` (the agent trusting the peers' certificates).
    pub fn new(agent: ureq::Agent, https: bool) -> Forwarder {
        Forwarder {
            agent,
            scheme: if https { "https" } else { "http" },
        }
    }
}

impl Default for Forwarder {
    fn default() -> Forwarder {
        Forwarder::new(ureq::Agent::new(), false)
    }
}

/// Who a verified forwarded request came from, as the forwarding node knew it.
#[derive(Debug, Clone)]
pub struct ForwardedCaller {
    pub user: Option<String>,
    pub client: Option<SocketAddr>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn header(req: &ServiceRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A forwarded request's claim checked against the forwarding key (the body read
/// and put back): the caller it names, or why it is refused.
pub async fn accept(req: &mut ServiceRequest, state: &AppState) -> Result<ForwardedCaller, String> {
    let key = state
        .engine
        .image()
        .forwarding_key
        .clone()
        .ok_or("this node has no forwarding key yet")?;
    let from = header(req, FORWARDED_HEADER)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .ok_or("a forwarded request names no node")?;
    let at_ms = header(req, AT_HEADER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or("a forwarded request has no time")?;
    let signature = header(req, SIGNATURE_HEADER).ok_or("a forwarded request is not signed")?;
    let user = match header(req, USER_HEADER) {
        Some(encoded) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or("a forwarded request's user is not base64 UTF-8")?,
        ),
        None => None,
    };
    let client = match header(req, FOR_HEADER) {
        Some(address) => Some(
            address
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| "a forwarded request's client address is not an address")?,
        ),
        None => None,
    };
    let body = req
        .extract::<web::Bytes>()
        .await
        .map_err(|e| e.to_string())?;
    let target = target(req);
    let claim = Claim {
        from,
        at_ms,
        method: req.method().as_str(),
        target: &target,
        user: user.as_deref(),
        client,
        body: &body,
    };
    if !key.verify(&claim, &signature, now_ms()) {
        return Err(format!(
            "the request forwarded by node {from} is not signed with the cluster's forwarding key, or is stale"
        ));
    }
    req.set_payload(actix_web::dev::Payload::from(body));
    Ok(ForwardedCaller {
        user,
        client: client.map(|ip| SocketAddr::new(ip, 0)),
    })
}

/// The request's path and query, as a claim signs them.
fn target(req: &ServiceRequest) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.path().to_string())
}

/// Middleware on `/consumers/{group}/instances/{instance}/…`.
pub async fn forward(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let group = req
        .match_info()
        .get("group")
        .unwrap_or_default()
        .to_string();
    let name = req
        .match_info()
        .get("instance")
        .unwrap_or_default()
        .to_string();
    let forwarded = req.headers().contains_key(FORWARDED_HEADER);
    let here = consumers::find(
        &state.engine,
        &crate::auth::Caller::of(req.request(), Listener::Http),
        &group,
        &name,
    )
    .await;
    let missing = match here {
        Ok(_) => return next.call(req).await.map(|r| r.map_into_boxed_body()),
        Err(e) => e,
    };
    if forwarded {
        let response = HttpResponse::from_error(consumer_error(missing));
        return Ok(req.into_response(response));
    }
    let body = req.extract::<web::Bytes>().await?;
    let image = state.engine.image();
    let Some(key) = image.forwarding_key.clone() else {
        log::warn!("no forwarding key in the metadata yet: consumer requests are not forwarded");
        let response = HttpResponse::from_error(consumer_error(missing));
        return Ok(req.into_response(response));
    };
    let peers: Vec<String> = image
        .brokers
        .values()
        .filter(|b| b.id != image.node_id && !b.fenced)
        .filter_map(|b| b.endpoints.iter().find(|e| e.listener == HTTP_LISTENER))
        .map(|e| format!("{}:{}", e.host, e.port))
        .collect();
    let target = target(&req);
    let method = req.method().as_str().to_string();
    let caller = crate::auth::Caller::of(req.request(), Listener::Http);
    let client = caller.client_address.map(|a| a.ip());
    let at_ms = now_ms();
    let signature = key.sign(&Claim {
        from: state.node_id,
        at_ms,
        method: &method,
        target: &target,
        user: caller.user.as_deref(),
        client,
        body: &body,
    });
    let mut headers = vec![
        (FORWARDED_HEADER, state.node_id.to_string()),
        (AT_HEADER, at_ms.to_string()),
        (SIGNATURE_HEADER, signature),
    ];
    if let Some(user) = &caller.user {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user);
        headers.push((USER_HEADER, encoded));
    }
    if let Some(client) = client {
        headers.push((FOR_HEADER, client.to_string()));
    }
    for name in ["content-type", "accept"] {
        if let Some(value) = header(&req, name) {
            headers.push((name, value));
        }
    }
    let forwarder = &state.forwarder;
    for peer in peers {
        let url = format!("{}://{peer}{target}", forwarder.scheme);
        let (agent, method, headers, body) = (
            forwarder.agent.clone(),
            method.clone(),
            headers.clone(),
            body.clone(),
        );
        let answered = web::block(move || {
            let mut request = agent.request(&method, &url).timeout(FORWARD_TIMEOUT);
            for (name, value) in &headers {
                request = request.set(name, value);
            }
            let response = match request.send_bytes(&body) {
                Ok(r) | Err(ureq::Error::Status(_, r)) => r,
                Err(e) => return Err(e.to_string()),
            };
            let status = response.status();
            let content_type = response.content_type().to_string();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(response.into_reader(), MAX_FORWARD_BYTES),
                &mut bytes,
            )
            .map_err(|e| e.to_string())?;
            Ok((status, content_type, bytes))
        })
        .await;
        match answered {
            Ok(Ok((404, _, bytes))) if not_this_instance(&bytes) => continue,
            Ok(Ok((status, content_type, bytes))) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                let response = HttpResponse::build(status)
                    .content_type(content_type)
                    .body(bytes);
                return Ok(req.into_response(response));
            }
            Ok(Err(e)) => log::debug!("forwarding a consumer request to {peer}: {e}"),
            Err(e) => log::debug!("forwarding a consumer request to {peer}: {e}"),
        }
    }
    let response = HttpResponse::from_error(consumer_error(missing));
    Ok(req.into_response(response))
}

/// A 404 that says the node has no such instance (rather than, say, an unknown
/// topic asked of the instance that is there).
fn not_this_instance(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error_code"].as_i64())
        == Some(i64::from(crate::error::codes::CONSUMER_INSTANCE_NOT_FOUND))
}
