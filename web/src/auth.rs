//! HTTP authentication, as Confluent REST Proxy's `authentication.method=BASIC`:
//! every request but `/health` carries `Authorization: Basic …` with a user's name
//! and password, checked against the same SCRAM credentials SASL uses (the users in
//! the metadata image; a recent success is remembered, so a client's every request
//! does not cost a PBKDF2). A missing or wrong one is 401 / 40101 with a
//! `WWW-Authenticate: Basic` challenge, before any handler runs; an address whose
//! attempts keep failing waits longer for each answer (100 ms, doubling to 5 s).
//!
//! Browsers log in instead (`/login`, the dashboard's login page): the name and
//! password, checked the same way, open a session kept in this node's memory and
//! named by a random token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over
//! https), which the middleware accepts in place of the header — for the dashboard's
//! fetches and its WebSocket alike. A page a browser navigates to without either is
//! redirected to the login page rather than challenged. Sessions end at `/logout`,
//! after 12 hours unused, when their user is deleted, or when the node restarts.
//!
//! Handlers learn who asks through [`Caller`], the request layer's
//! `RequestContext` for this request: its address, and the user this middleware
//! authenticated (none with `authentication.method=NONE`: Kafka's `User:ANONYMOUS`).

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpMessage, HttpRequest, ResponseError};
use base64::Engine as _;
use troupe_actors::auth::Authenticator;
use troupe_actors::requests::{Listener, RequestContext};
use troupe_actors::ErrorKind;

use crate::error::ApiError;
use crate::state::AppState;

/// `authentication.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpAuth {
    /// Anyone who reaches the listener (the embedded default, on 127.0.0.1).
    #[default]
    None,
    /// HTTP Basic against the users' SCRAM credentials.
    Basic,
}

impl HttpAuth {
    pub fn parse(raw: &str) -> Result<HttpAuth, String> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "NONE" => Ok(HttpAuth::None),
            "BASIC" => Ok(HttpAuth::Basic),
            other => Err(format!("'{other}' is not NONE or BASIC")),
        }
    }
}

/// The user a request authenticated as (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser(pub String);

/// The subject of the client certificate a TLS connection presented (connection
/// data): Kafka's SSL principal, `User:CN=…`. The certificate chains to
/// `ssl.truststore.location` (rustls checked it), so it authenticates the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateUser(pub String);

/// Paths served without authentication: a load balancer's liveness probe, and the
/// login page with what it loads.
fn open_path(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/login" | "/dashboard/login.js" | "/dashboard/style.css"
    )
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "troupe_session";
/// A session unused this long ends.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; past it the least recently used go first.
const SESSIONS_MAX: usize = 10_000;

/// The dashboard's login sessions on this node: token → user.
#[derive(Default)]
pub struct Sessions {
    /// Token → user, the credential it logged in with (its stored key), last use.
    open: Mutex<HashMap<String, Session>>,
}

/// A session's user, the credential it logged in with (its stored key), last use.
type Session = (String, Vec<u8>, Instant);

impl Sessions {
    /// A new session for `user`, logged in with the credential `fingerprint`
    /// ([`Authenticator::fingerprint`]): its token.
    pub fn open(&self, user: &str, fingerprint: Vec<u8>) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut open = self.open.lock().ok()?;
        let now = Instant::now();
        open.retain(|_, (_, _, used)| now.duration_since(*used) < SESSION_IDLE);
        if open.len() >= SESSIONS_MAX {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, (_, _, used))| *used)
                .map(|(t, _)| t.clone())
            {
                open.remove(&oldest);
            }
        }
        open.insert(token.clone(), (user.to_string(), fingerprint, now));
        Some(token)
    }

    /// The user of a live session whose credential is still `current(user)` (a new
    /// password, or the user deleted, ends it); it counts as used now.
    pub fn user(
        &self,
        token: &str,
        current: impl FnOnce(&str) -> Option<Vec<u8>>,
    ) -> Option<String> {
        let mut open = self.open.lock().ok()?;
        let now = Instant::now();
        let (user, fingerprint, used) = open.get_mut(token)?;
        if now.duration_since(*used) >= SESSION_IDLE
            || current(user).as_ref() != Some(&*fingerprint)
        {
            open.remove(token);
            return None;
        }
        *used = now;
        Some(user.clone())
    }

    pub fn close(&self, token: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(token);
        }
    }
}

/// The session token a request's cookie carries.
pub fn session_token(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_string())
}

/// A browser navigating to a page (not a script's fetch).
fn navigation(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::GET
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// The middleware: with BASIC, authenticates the request or answers 401.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let method = req
        .app_data::<web::Data<HttpAuth>>()
        .map(|m| *m.get_ref())
        .unwrap_or_default();
    if req
        .headers()
        .contains_key(crate::forwarding::FORWARDED_HEADER)
    {
        return forwarded(req, next).await;
    }
    let certified = req.conn_data::<CertificateUser>().is_some();
    if method == HttpAuth::None || open_path(req.path()) || certified {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.into_response(ApiError::internal("no state").error_response()));
    };
    let address = req.peer_addr().map(|a| a.ip());
    if req.headers().get(header::AUTHORIZATION).is_none() {
        let image = state.engine.image();
        let session = req.app_data::<web::Data<Sessions>>().and_then(|sessions| {
            let token = session_token(req.request())?;
            sessions.user(&token, |user| {
                Authenticator::fingerprint(&image.users, user)
            })
        });
        if let Some(user) = session {
            req.extensions_mut().insert(AuthenticatedUser(user));
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        if navigation(req.request()) {
            let response = actix_web::HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .finish();
            return Ok(req.into_response(response));
        }
    }
    match basic_credentials(req.request()) {
        Some((user, password)) => {
            let image = state.engine.image();
            let authenticator = &state.engine.authenticator;
            if authenticator
                .check_password_async(image.users.clone(), user.clone(), password)
                .await
            {
                authenticator.succeeded(address);
                req.extensions_mut().insert(AuthenticatedUser(user));
                return Ok(next.call(req).await?.map_into_boxed_body());
            }
            log::warn!(
                "http: {} {} from {}: wrong user name or password (user '{user}')",
                req.method(),
                req.path(),
                address.map(|a| a.to_string()).unwrap_or_default()
            );
            let delay = authenticator.failed(address);
            actix_web::rt::time::sleep(delay).await;
            let browser = from_browser(req.request());
            Ok(req.into_response(challenge("invalid user name or password", browser)))
        }
        None => {
            let browser = from_browser(req.request());
            Ok(req.into_response(challenge(
                "authentication required: send a user's name and password (HTTP Basic), or log in at /login",
                browser,
            )))
        }
    }
}

/// A request another node forwarded: its caller is the one the node vouches for,
/// when the claim's signature holds (whatever the authentication method: the claim
/// also names the caller's address); otherwise 401.
async fn forwarded(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.into_response(ApiError::internal("no state").error_response()));
    };
    let key = state.engine.image().forwarding_key.clone();
    let now_ms = state.engine.clock.now_ms().max(0) as u64;
    match crate::forwarding::accept(&mut req, key, now_ms).await {
        Ok(caller) => {
            if let Some(user) = &caller.user {
                req.extensions_mut().insert(AuthenticatedUser(user.clone()));
            }
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Err(reason) => {
            log::warn!(
                "http: {} {} from {}: {reason}",
                req.method(),
                req.path(),
                req.peer_addr().map(|a| a.to_string()).unwrap_or_default()
            );
            Ok(req.into_response(challenge(&reason, false)))
        }
    }
}

/// A browser's request (only browsers send `Sec-Fetch-Mode`).
fn from_browser(req: &HttpRequest) -> bool {
    req.headers().contains_key("sec-fetch-mode")
}

/// 401 / 40101, with the Basic challenge unless it goes to a browser: there the
/// challenge would pop the browser's own password prompt over the dashboard, whose
/// pages send the user to its login page instead.
pub fn challenge(message: &str, browser: bool) -> actix_web::HttpResponse {
    let mut response =
        ApiError::of_kind(ErrorKind::SaslAuthenticationFailed, message).error_response();
    if !browser {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"troupe\", charset=\"UTF-8\""),
        );
    }
    response
}

/// `Authorization: Basic base64(user:password)` → user and password.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Who asks: the request layer's context for this request (its address and the
/// authenticated user), taken as a handler argument.
#[derive(Debug, Clone)]
pub struct Caller(pub RequestContext);

impl Caller {
    pub fn of(req: &HttpRequest, listener: Listener) -> Caller {
        // Forwarded by another node: the caller it vouched for, not the node.
        if let Some(forwarded) = req.extensions().get::<crate::forwarding::ForwardedCaller>() {
            return Caller(RequestContext {
                listener,
                user: forwarded.user.clone(),
                client_address: forwarded.client,
                ..Default::default()
            });
        }
        Caller(RequestContext {
            listener,
            user: req
                .extensions()
                .get::<AuthenticatedUser>()
                .map(|u| u.0.clone())
                .or_else(|| req.conn_data::<CertificateUser>().map(|c| c.0.clone())),
            client_address: req.peer_addr(),
            ..Default::default()
        })
    }
}

impl std::ops::Deref for Caller {
    type Target = RequestContext;

    fn deref(&self) -> &RequestContext {
        &self.0
    }
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Ready<Result<Caller, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Caller::of(req, Listener::Http)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn basic_credentials_are_read_from_the_header() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, format!("Basic {encoded}")))
            .to_http_request();
        assert_eq!(
            basic_credentials(&req),
            Some(("alice".into(), "pa:ss".into()))
        );
        let bearer = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer abc"))
            .to_http_request();
        assert_eq!(basic_credentials(&bearer), None);
        let garbage = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Basic !!!"))
            .to_http_request();
        assert_eq!(basic_credentials(&garbage), None);
        assert_eq!(HttpAuth::parse("basic"), Ok(HttpAuth::Basic));
        assert!(HttpAuth::parse("digest").is_err());
    }
}
