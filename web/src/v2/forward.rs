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

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};
use troupe_actors::auth::forwarding::Claim;
use troupe_actors::requests::{consumers, Listener};

use crate::forwarding::{claim_headers, header, target, FORWARDED_HEADER};
use crate::state::AppState;
use crate::v2::consumer_error;

/// The listener name a broker's HTTP endpoint is registered under.
pub const HTTP_LISTENER: &str = "HTTP";
/// The time limit of a forwarded request (a records poll long-polls up to its own
/// timeout, which stays well below this).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest forwarded body, either way.
const MAX_FORWARD_BYTES: u64 = 64 << 20;

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
    let mut headers = claim_headers(
        &key,
        &Claim {
            from: state.node_id,
            at_ms: state.engine.clock.now_ms().max(0) as u64,
            method: &method,
            target: &target,
            user: caller.user.as_deref(),
            client: caller.client_address.map(|a| a.ip()),
            body: &body,
        },
    );
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
