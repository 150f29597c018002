//! Requests one node forwards to another over HTTP (a v2 consumer instance's, see
//! `v2/forward.rs`): how they are sent ([`Forwarder`]) and the claim they carry of
//! who made them — the caller's user and address, signed with the cluster's
//! forwarding key ([`troupe_actors::auth::forwarding`]) — which the serving node's
//! authentication checks ([`accept`]) before anything else. Nothing here depends
//! on the other web modules, which all may use it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use actix_web::web;
use base64::Engine as _;
use troupe_actors::auth::forwarding::{Claim, ForwardingKey};

/// Marks a request forwarded from another node: served here, never sent on.
pub const FORWARDED_HEADER: &str = "troupe-forwarded-by";
/// When it was forwarded (ms since the Unix epoch).
pub const AT_HEADER: &str = "troupe-forwarded-at";
/// The caller's user name, base64 (absent without authentication).
pub const USER_HEADER: &str = "troupe-forwarded-user";
/// The caller's address.
pub const FOR_HEADER: &str = "troupe-forwarded-for";
/// The claim's signature.
pub const SIGNATURE_HEADER: &str = "troupe-forwarded-signature";
/// How this node reaches the others' HTTP listeners.
#[derive(Clone)]
pub struct Forwarder {
    pub agent: ureq::Agent,
    /// `http` or `https`.
    pub scheme: &'static str,
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

pub fn header(req: &ServiceRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A forwarded request's claim checked against the forwarding key at `now_ms`
/// (the body read and put back): the caller it names, or why it is refused.
pub async fn accept(
    req: &mut ServiceRequest,
    key: Option<Arc<ForwardingKey>>,
    now_ms: u64,
) -> Result<ForwardedCaller, String> {
    let key = key.ok_or("this node has no forwarding key yet")?;
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
    if !key.verify(&claim, &signature, now_ms) {
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
pub fn target(req: &ServiceRequest) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.path().to_string())
}

/// The headers that carry `claim` (its method, target and body travel as the
/// request's own): the forwarding node, when, who and from where, and the signature.
pub fn claim_headers(key: &ForwardingKey, claim: &Claim<'_>) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (FORWARDED_HEADER, claim.from.to_string()),
        (AT_HEADER, claim.at_ms.to_string()),
        (SIGNATURE_HEADER, key.sign(claim)),
    ];
    if let Some(user) = claim.user {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user);
        headers.push((USER_HEADER, encoded));
    }
    if let Some(client) = claim.client {
        headers.push((FOR_HEADER, client.to_string()));
    }
    headers
}
