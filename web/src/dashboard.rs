//! The browser dashboard, served by the broker itself: `GET /` is the page,
//! `/dashboard/app.js` and `/dashboard/style.css` its script and style. The files live
//! in `web/dashboard/` and are embedded at compile time, so the dashboard needs no
//! build step, no CDN and no network beyond the broker. The page uses only the
//! broker's public APIs (REST v3/v2, `/metrics`, the WebSocket at `/ws`).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("../dashboard/index.html");
const APP_JS: &str = include_str!("../dashboard/app.js");
const STYLE_CSS: &str = include_str!("../dashboard/style.css");

/// The page loads nothing from elsewhere and runs no inline script; a browser that
/// honours this refuses anything injected.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/",
        web::get().to(|| asset(INDEX_HTML, "text/html; charset=utf-8")),
    )
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

async fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // A new broker version brings new files: browsers revalidate.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}
