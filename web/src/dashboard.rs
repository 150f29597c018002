//! The browser dashboard, served by the broker itself: `GET /` is the page (for
//! browsers; API clients get Confluent's root answer `{}`), `/dashboard/app.js` and
//! `/dashboard/style.css` its script and style, `/dashboard/status` what the page
//! must warn about (a listener reachable beyond this machine with no authentication). The files live
//! in `web/dashboard/` and are embedded at compile time, so the dashboard needs no
//! build step, no CDN and no network beyond the broker. The page uses only the
//! broker's public APIs (REST v3/v2, `/metrics`, the WebSocket at `/ws`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::browser_safety::BrowserSafety;
use crate::records::V2;

const INDEX_HTML: &str = include_str!("../dashboard/index.html");
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
        );
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

/// What the page shows a warning for: `exposed` is true when the listener is bound
/// beyond loopback while the broker has no authentication.
async fn status(policy: Option<web::Data<BrowserSafety>>) -> HttpResponse {
    let exposed = policy.is_some_and(|p| p.exposed);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "exposed": exposed, "authentication": false }))
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
