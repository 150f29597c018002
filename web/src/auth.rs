//! HTTP authentication, as Confluent REST Proxy's `authentication.method=BASIC`:
//! every request but `/health` carries `Authorization: Basic …` with a user's name
//! and password, checked against the same SCRAM credentials SASL uses (the users in
//! the metadata image; a recent success is remembered, so a client's every request
//! does not cost a PBKDF2). A missing or wrong one is 401 / 40101 with a
//! `WWW-Authenticate: Basic` challenge, before any handler runs; an address whose
//! attempts keep failing waits longer for each answer (100 ms, doubling to 5 s).
//!
//! Handlers learn who asks through [`Caller`], the request layer's
//! `RequestContext` for this request: its address, and the user this middleware
//! authenticated (none with `authentication.method=NONE`: Kafka's `User:ANONYMOUS`).

use std::future::{ready, Ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpMessage, HttpRequest, ResponseError};
use base64::Engine as _;
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

/// Paths served without authentication: a load balancer's liveness probe.
fn open_path(path: &str) -> bool {
    path == "/health"
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
    if method == HttpAuth::None || open_path(req.path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.into_response(ApiError::internal("no state").error_response()));
    };
    let address = req.peer_addr().map(|a| a.ip());
    match basic_credentials(req.request()) {
        Some((user, password)) => {
            let image = state.engine.image();
            let authenticator = &state.engine.authenticator;
            if authenticator.check_password(&image.users, &user, &password) {
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
            Ok(req.into_response(challenge("invalid user name or password")))
        }
        None => Ok(req.into_response(challenge(
            "authentication required: send a user's name and password (HTTP Basic)",
        ))),
    }
}

/// 401 / 40101 with the Basic challenge.
pub fn challenge(message: &str) -> actix_web::HttpResponse {
    let mut response =
        ApiError::of_kind(ErrorKind::SaslAuthenticationFailed, message).error_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"troupe\", charset=\"UTF-8\""),
    );
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
        Caller(RequestContext {
            listener,
            user: req
                .extensions()
                .get::<AuthenticatedUser>()
                .map(|u| u.0.clone()),
            client_address: req.peer_addr(),
            client_id: None,
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
