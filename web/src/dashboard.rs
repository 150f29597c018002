//! The browser dashboard, served by the broker itself: `GET /` is the page (for
//! browsers; API clients get Confluent's root answer `{}`), `/dashboard/app.js` and
//! `/dashboard/style.css` its script and style, `/dashboard/status` what the page
//! must warn about (a listener reachable beyond this machine with no authentication)
//! and who is logged in; `/login` the login page (GET) and the login (POST, a JSON
//! name and password that open a session, see `auth.rs`), `/logout` its end. The files live
//! in `web/dashboard/` and are embedded at compile time, so the dashboard needs no
//! build step, no CDN and no network beyond the broker. The page uses only the
//! broker's public APIs (REST v3/v2, `/metrics`, the WebSocket at `/ws`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use actix_web::cookie::{Cookie, SameSite};
use troupe_actors::auth::Authenticator;
use troupe_actors::ErrorKind;

use crate::auth::{session_token, Caller, HttpAuth, Sessions, SESSION_COOKIE};
use crate::browser_safety::BrowserSafety;
use crate::error::{ApiError, ApiResult};
use crate::read_body;
use crate::records::V2;
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../dashboard/index.html");
const LOGIN_HTML: &str = include_str!("../dashboard/login.html");
const LOGIN_JS: &str = include_str!("../dashboard/login.js");
const APP_JS: &str = include_str!("../dashboard/app.js");
const STYLE_CSS: &str = include_str!("../dashboard/style.css");

/// The page loads nothing from elsewhere and runs no inline script; a browser that
/// honours this refuses anything injected.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/dashboard/status", web::get().to(status))
        .route(
            "/ui",
            web::get().to(|| asset(INDEX_HTML, "text/html; charset=utf-8")),
        )
        .route(
            "/dashboard/app.js",
            web::get().to(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/dashboard/style.css",
            web::get().to(|| asset(STYLE_CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/login",
            web::get().to(|| asset(LOGIN_HTML, "text/html; charset=utf-8")),
        )
        .route(
            "/dashboard/login.js",
            web::get().to(|| asset(LOGIN_JS, "text/javascript; charset=utf-8")),
        )
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout));
}

/// The largest login body.
const LOGIN_MAX_BYTES: usize = 4096;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
}

fn session_cookie(req: &HttpRequest, value: &str, max_age: Option<i64>) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, value.to_string())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .finish();
    if let Some(seconds) = max_age {
        cookie.set_max_age(actix_web::cookie::time::Duration::seconds(seconds));
    }
    cookie
}

/// `POST /login` `{"user", "password"}` (JSON: a cross-site form cannot send it):
/// checked as HTTP Basic is, failures paced the same way; a success opens a session
/// and sets its cookie.
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    sessions: web::Data<Sessions>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    // A name and a password: a few KiB at most, read before anyone is known.
    let body = read_body(body, LOGIN_MAX_BYTES).await?;
    let login: Login = crate::json::parse(&body)?;
    let image = state.engine.image();
    let authenticator = &state.engine.authenticator;
    let address = req.peer_addr().map(|a| a.ip());
    if !authenticator
        .check_password_async(image.users.clone(), login.user.clone(), login.password)
        .await
    {
        log::warn!(
            "dashboard: login as '{}' from {} failed",
            login.user,
            address.map(|a| a.to_string()).unwrap_or_default()
        );
        actix_web::rt::time::sleep(authenticator.failed(address)).await;
        return Err(ApiError::of_kind(
            ErrorKind::SaslAuthenticationFailed,
            "invalid user name or password",
        ));
    }
    authenticator.succeeded(address);
    let fingerprint = Authenticator::fingerprint(&image.users, &login.user).unwrap_or_default();
    let token = sessions
        .open(&login.user, fingerprint)
        .ok_or_else(|| ApiError::internal("no session could be opened"))?;
    log::info!("dashboard: '{}' logged in", login.user);
    Ok(HttpResponse::NoContent()
        .cookie(session_cookie(&req, &token, None))
        .finish())
}

/// `POST /logout`: the session ends and its cookie is cleared.
async fn logout(req: HttpRequest, sessions: web::Data<Sessions>) -> HttpResponse {
    if let Some(token) = session_token(&req) {
        sessions.close(&token);
    }
    HttpResponse::NoContent()
        .cookie(session_cookie(&req, "", Some(0)))
        .finish()
}

/// `GET /`: the dashboard for a browser (its `Accept` names `text/html`), and
/// Confluent REST Proxy's root answer, `{}`, for API clients — typed
/// `application/json` when they ask for it, v2's type otherwise, as Confluent's.
async fn root(req: HttpRequest) -> HttpResponse {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if accept.contains("text/html") {
        return asset(INDEX_HTML, "text/html; charset=utf-8").await;
    }
    let wants_plain_json = accept.contains("application/json") && !accept.contains(V2);
    let content_type = if wants_plain_json {
        "application/json"
    } else {
        V2
    };
    HttpResponse::Ok().content_type(content_type).body("{}")
}

/// What the page shows: a warning when `exposed` (the listener is bound beyond
/// loopback while the broker has no authentication), and who is logged in.
async fn status(
    state: web::Data<AppState>,
    policy: Option<web::Data<BrowserSafety>>,
    method: Option<web::Data<HttpAuth>>,
    caller: Caller,
) -> HttpResponse {
    let exposed = policy.is_some_and(|p| p.exposed);
    let authentication = method.is_some_and(|m| *m.get_ref() != HttpAuth::None);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "exposed": exposed,
            "authentication": authentication,
            "user": caller.user,
            "authorizer": state.engine.security.authorizer,
        }))
}

async fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // A new broker version brings new files: browsers revalidate.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}
