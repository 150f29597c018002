//! Browser safety: one middleware in front of every route that keeps web pages the
//! operator happens to open from using the broker through their browser. Without
//! authentication (`authentication.method=NONE`, the embedded default) whoever can
//! reach the listener can do anything, and a browser can reach a loopback broker on
//! behalf of any site it visits; with it, the browser's session cookie is SameSite
//! and these checks hold as well:
//!
//! - **Host** (every request, the WebSocket upgrade included): the name the request
//!   was sent to must be one the broker answers to — an IP literal, `localhost`, the
//!   listener's host, or one of `http.allowed.hosts`. A DNS-rebinding page reaches
//!   127.0.0.1 under its own name (`Host: evil.example:8082`, same-origin to the
//!   browser, so `Origin` checks pass); its name is not on the list. IP literals are
//!   always fine: rebinding needs a name the attacker controls.
//! - **Cross-site writes** (every method but GET and HEAD): refused when the browser
//!   says the request comes from another site (`Sec-Fetch-Site: cross-site` or
//!   `same-site`) or names an `Origin` that is neither the broker's own (the Host it
//!   was sent to) nor one of `http.allowed.origins`. Requests with neither header —
//!   curl, scripts, every non-browser client — are not affected.
//! - **Content types** ([`crate::content_type`]): exact, so the types a form or a
//!   no-preflight `fetch` can send are refused.
//! - **CORS** stays closed (no `Access-Control-Allow-Origin`, so a page elsewhere
//!   cannot read an answer) unless `http.cors.allowed.origins` lists the page's
//!   origin: then its preflights are answered here (before authentication: they
//!   carry no credentials) and its answers carry the CORS headers, credentials
//!   allowed; such an origin may change things too.
//!
//! Refusals are 403 with the usual JSON error body, before any handler runs, so a
//! refused request changes nothing.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest, ResponseError};

use crate::content_type;
use crate::error::{codes, ApiError, ApiResult};

/// The names and origins a browser may use the broker from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserSafety {
    /// Host names (lowercase, without port) the broker answers to besides IP literals,
    /// `localhost` and the listener's host: `http.allowed.hosts`. `*` turns the check off.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`, lowercase) allowed to send state-changing
    /// requests besides the broker's own: `http.allowed.origins`. `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Origins whose pages may call the API (`http.cors.allowed.origins`): CORS
    /// answers for them, and they may change things. `*` any.
    pub cors_origins: Vec<String>,
    /// The listener's host as configured (`listeners`).
    pub listener_host: String,
    /// The listener accepts connections from beyond this machine (it is not bound to
    /// a loopback address) — with no authentication, anyone who can reach it can
    /// do anything; the dashboard shows a warning.
    pub exposed: bool,
}

impl BrowserSafety {
    /// Whether `host` (a Host header value, port included or not) names this broker.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        if name.is_empty() || name.parse::<std::net::IpAddr>().is_ok() {
            return true;
        }
        name == "localhost"
            || name == self.listener_host.to_ascii_lowercase()
            || self
                .allowed_hosts
                .iter()
                .any(|h| h == "*" || host_name(h) == name)
    }

    /// An origin the operator listed (`http.allowed.origins`, or for CORS).
    fn origin_listed(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        self.allowed_origins.iter().any(|o| o == "*" || *o == origin)
            // A CORS origin named exactly may write; `*` in the CORS list lets any page
            // read, without credentials, and write nothing.
            || self.cors_origins.contains(&origin)
    }

    /// Whether CORS answers `origin` (`http.cors.allowed.origins`): `Some(true)` for
    /// one listed by name (credentials allowed), `Some(false)` for any other under `*`
    /// (`Access-Control-Allow-Origin: *`, no credentials), `None` if not at all.
    pub fn cors_allows(&self, origin: &str) -> Option<bool> {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.cors_origins.contains(&origin) {
            Some(true)
        } else if self.cors_origins.iter().any(|o| o == "*") {
            Some(false)
        } else {
            None
        }
    }

    /// The broker's own origin: the page was served from the Host this request went
    /// to (already checked to be one of the broker's names).
    fn own_origin(origin: &str, host: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        authority.is_some_and(|a| !host.is_empty() && a == host.to_ascii_lowercase())
    }
}

/// The host name of a Host header value: lowercase, port and IPv6 brackets removed.
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    // An unbracketed IPv6 address has several colons and no port.
    if host.matches(':').count() > 1 {
        return host;
    }
    host.split(':').next().unwrap_or("").to_string()
}

fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

fn forbidden(code: i32, message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

/// The checks, in order: Host, cross-site writes, content type.
pub fn check(req: &HttpRequest, policy: &BrowserSafety) -> ApiResult<()> {
    let host = header_text(req, header::HOST)
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    if !policy.host_allowed(&host) {
        return Err(forbidden(
            codes::FORBIDDEN_HOST,
            format!(
                "Host '{host}' is not a name this broker answers to (a DNS-rebinding guard): \
                 use its address or localhost, or add the name to http.allowed.hosts"
            ),
        ));
    }
    let method = req.method();
    if *method != Method::GET && *method != Method::HEAD {
        let origin = header_text(req, header::ORIGIN);
        // A listed origin is another site by definition: its browser says
        // `Sec-Fetch-Site: cross-site`, and the operator allowed it anyway.
        if origin.is_some_and(|o| policy.origin_listed(o)) {
            return content_type::check(req);
        }
        let fetch_site = header_text(req, header::HeaderName::from_static("sec-fetch-site"))
            .map(str::to_ascii_lowercase);
        if let Some(site @ ("cross-site" | "same-site")) = fetch_site.as_deref() {
            return Err(forbidden(
                codes::FORBIDDEN_ORIGIN,
                format!(
                    "{method} from another site (Sec-Fetch-Site: {site}) is not allowed: \
                     browsers may change the broker only from its own pages or \
                     http.allowed.origins"
                ),
            ));
        }
        if let Some(origin) = origin {
            if !BrowserSafety::own_origin(origin, &host) {
                return Err(forbidden(
                    codes::FORBIDDEN_ORIGIN,
                    format!(
                        "{method} from origin '{origin}' is not allowed: browsers may change \
                         the broker only from its own pages or http.allowed.origins"
                    ),
                ));
            }
        }
    }
    content_type::check(req)
}

/// The middleware: answers what [`check`] refuses itself, before routing, so no
/// handler runs for it.
pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let refused = match req.app_data::<web::Data<BrowserSafety>>() {
        Some(policy) => check(req.request(), policy).err(),
        // Without a policy, the strictest one: loopback names and the own origin only.
        None => check(req.request(), &BrowserSafety::default()).err(),
    };
    if let Some(e) = refused {
        log::debug!("refused {} {}: {}", req.method(), req.path(), e.message);
        let response = e.error_response();
        return Ok(req.into_response(response));
    }
    let cors = header_text(req.request(), header::ORIGIN).and_then(|o| {
        let named = req.app_data::<web::Data<BrowserSafety>>()?.cors_allows(o)?;
        Some(if named {
            o.to_string()
        } else {
            "*".to_string()
        })
    });
    let Some(origin) = cors else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // A preflight: answered here, before authentication (it carries no credentials).
    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut response = actix_web::HttpResponse::NoContent().finish();
        allow_origin(response.headers_mut(), &origin);
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::HeaderValue::from_static("Authorization, Content-Type, Accept"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            header::HeaderValue::from_static("600"),
        );
        return Ok(req.into_response(response));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    allow_origin(response.headers_mut(), &origin);
    Ok(response)
}

/// CORS's answer for `origin`: allowed — with credentials (Basic or the session) for
/// an origin listed by name, without for `*` — and the `Location` of created resources
/// readable.
fn allow_origin(headers: &mut header::HeaderMap, origin: &str) {
    if let Ok(value) = header::HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    if origin != "*" {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::HeaderValue::from_static("true"),
        );
    }
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::HeaderValue::from_static("Location"),
    );
    headers.append(header::VARY, header::HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn policy() -> BrowserSafety {
        BrowserSafety {
            // A port in the list is ignored: names are what rebinding forges.
            allowed_hosts: vec!["broker.internal".into(), "ops.example:9000".into()],
            allowed_origins: vec!["https://ops.example".into()],
            cors_origins: Vec::new(),
            listener_host: "127.0.0.1".into(),
            exposed: false,
        }
    }

    fn status(req: TestRequest) -> Option<u16> {
        check(&req.to_http_request(), &policy())
            .err()
            .map(|e| e.status.as_u16())
    }

    #[test]
    fn hosts_are_ip_literals_localhost_the_listener_or_allowed_names() {
        let p = policy();
        for ok in [
            "127.0.0.1:8082",
            "[::1]:8082",
            "::1",
            "10.1.2.3",
            "localhost:8082",
            "LOCALHOST",
            "broker.internal:8082",
            "Broker.Internal",
            "ops.example",
            "",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.example:8082",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert!(!p.host_allowed(refused), "{refused}");
        }
        let any = BrowserSafety {
            cors_origins: Vec::new(),
            allowed_hosts: vec!["*".into()],
            ..BrowserSafety::default()
        };
        assert!(any.host_allowed("anything.example"));
    }

    #[test]
    fn a_rebinding_host_is_refused_for_reads_too() {
        let req = TestRequest::get()
            .uri("/v3/clusters")
            .insert_header((header::HOST, "evil.example:8082"));
        assert_eq!(status(req), Some(403));
    }

    #[test]
    fn cross_site_writes_are_refused_and_clients_without_origin_are_not() {
        let post = || {
            TestRequest::post()
                .uri("/v3/clusters/c/topics")
                .insert_header((header::HOST, "127.0.0.1:8082"))
                .insert_header((header::CONTENT_TYPE, "application/json"))
        };
        assert_eq!(status(post()), None);
        assert_eq!(
            status(post().insert_header((header::ORIGIN, "http://127.0.0.1:8082"))),
            None
        );
        assert_eq!(
            status(post().insert_header((header::ORIGIN, "https://ops.example"))),
            None
        );
        // A listed origin, as a browser really sends it.
        assert_eq!(
            status(
                post()
                    .insert_header((header::ORIGIN, "https://ops.example"))
                    .insert_header(("Sec-Fetch-Site", "cross-site"))
            ),
            None
        );
        assert_eq!(
            status(
                post()
                    .insert_header((header::ORIGIN, "https://evil.example"))
                    .insert_header(("Sec-Fetch-Site", "cross-site"))
            ),
            Some(403)
        );
        assert_eq!(
            status(post().insert_header((header::ORIGIN, "http://evil.example"))),
            Some(403)
        );
        assert_eq!(
            status(post().insert_header((header::ORIGIN, "null"))),
            Some(403)
        );
        assert_eq!(
            status(post().insert_header(("Sec-Fetch-Site", "cross-site"))),
            Some(403)
        );
        assert_eq!(
            status(post().insert_header(("Sec-Fetch-Site", "same-site"))),
            Some(403)
        );
        assert_eq!(
            status(post().insert_header(("Sec-Fetch-Site", "same-origin"))),
            None
        );
        // Reads from other origins are left to the browser's same-origin policy.
        let get = TestRequest::get()
            .uri("/v3/clusters")
            .insert_header((header::HOST, "127.0.0.1:8082"))
            .insert_header((header::ORIGIN, "http://evil.example"));
        assert_eq!(status(get), None);
    }
}
