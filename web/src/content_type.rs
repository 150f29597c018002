//! Request body types: which `Content-Type` each route takes, checked exactly.
//!
//! As Confluent REST Proxy (Jersey matches the media type itself, not a substring):
//! v3 bodies are `application/json`; v2 produce bodies are
//! `application/vnd.kafka.binary.v2+json` or `application/vnd.kafka.json.v2+json`;
//! the other v2 bodies (consumer instances) any of the `application/vnd.kafka.*v2+json`
//! types. Anything else is 415. A `charset` other than UTF-8 is 400 (JSON is UTF-8).
//! A request without `Content-Type` is read as JSON, as Jersey does.
//!
//! Exactness matters beyond fidelity: `text/plain`, `multipart/form-data` and
//! `application/x-www-form-urlencoded` are the types a browser sends cross-site
//! without asking first (no CORS preflight), so refusing them keeps a hostile page
//! from writing through a user's browser even where no `Origin` arrives.

use actix_web::http::{header, Method, StatusCode};
use actix_web::HttpRequest;

use crate::error::{codes, ApiError, ApiResult};
use crate::records::{EmbeddedFormat, BINARY_V2, JSON_V2, STRING_V2, V2};

pub const JSON: &str = "application/json";

/// A parsed `Content-Type`: the lowercased `type/subtype` and its charset, if named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub essence: String,
    pub charset: Option<String>,
}

impl MediaType {
    pub fn parse(text: &str) -> MediaType {
        let mut parts = text.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let charset = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
            .map(|(_, value)| value.trim().trim_matches('"').to_ascii_lowercase());
        MediaType { essence, charset }
    }

    /// The request's `Content-Type`, or `None` when it sends none.
    pub fn of(req: &HttpRequest) -> Option<MediaType> {
        req.headers()
            .get(header::CONTENT_TYPE)
            .map(|v| MediaType::parse(v.to_str().unwrap_or("")))
    }
}

/// The bodies Troupe's v2 produce takes, by embedded format; the schema-registry
/// formats Confluent also takes are named so the refusal can say why.
const SCHEMA_FORMATS: [&str; 3] = [
    "application/vnd.kafka.avro.v2+json",
    "application/vnd.kafka.protobuf.v2+json",
    "application/vnd.kafka.jsonschema.v2+json",
];

/// The embedded format a v2 produce body's `Content-Type` names (415 for any other).
pub fn v2_produce_format(req: &HttpRequest) -> ApiResult<EmbeddedFormat> {
    let Some(media) = MediaType::of(req) else {
        return Err(unsupported(
            "(none)",
            &format!("use {BINARY_V2} or {JSON_V2}"),
        ));
    };
    check_charset(&media)?;
    match media.essence.as_str() {
        BINARY_V2 => Ok(EmbeddedFormat::Binary),
        JSON_V2 => Ok(EmbeddedFormat::Json),
        t if SCHEMA_FORMATS.contains(&t) => Err(unsupported(
            t,
            "it needs a schema registry, which Troupe does not have",
        )),
        t => Err(unsupported(t, &format!("use {BINARY_V2} or {JSON_V2}"))),
    }
}

/// What a route's body must be, from its path and method.
enum Expected {
    /// Not an API route taking a body (the dashboard, `/health`, …): not checked.
    Nothing,
    V3Json,
    V2Produce,
    V2Other,
}

fn expected(method: &Method, path: &str) -> Expected {
    if path == "/v3" || path.starts_with("/v3/") {
        return Expected::V3Json;
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.first().copied() {
        Some("topics") => {
            // POST /topics/{t} and /topics/{t}/partitions/{p} produce.
            let produce = *method == Method::POST
                && (segments.len() == 2 || (segments.len() == 4 && segments[2] == "partitions"));
            if produce {
                Expected::V2Produce
            } else {
                Expected::V2Other
            }
        }
        Some("consumers") | Some("brokers") => Expected::V2Other,
        _ => Expected::Nothing,
    }
}

/// Checks a request's `Content-Type` against its route. Requests that cannot carry a
/// body the API reads (GET and HEAD without one) are not checked.
pub fn check(req: &HttpRequest) -> ApiResult<()> {
    let method = req.method();
    if (*method == Method::GET || *method == Method::HEAD) && !has_body(req) {
        return Ok(());
    }
    let Some(media) = MediaType::of(req) else {
        return Ok(());
    };
    match expected(method, req.path()) {
        Expected::Nothing => Ok(()),
        Expected::V3Json => {
            if media.essence != JSON {
                return Err(unsupported(&media.essence, &format!("use {JSON}")));
            }
            check_charset(&media)
        }
        Expected::V2Produce => v2_produce_format(req).map(|_| ()),
        Expected::V2Other => {
            let v2_types = [V2, BINARY_V2, JSON_V2, STRING_V2];
            if !v2_types.contains(&media.essence.as_str())
                && !SCHEMA_FORMATS.contains(&media.essence.as_str())
            {
                return Err(unsupported(&media.essence, &format!("use {V2}")));
            }
            check_charset(&media)
        }
    }
}

fn has_body(req: &HttpRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// JSON is UTF-8 (RFC 8259); a body declared in another charset would be misread.
fn check_charset(media: &MediaType) -> ApiResult<()> {
    match media.charset.as_deref() {
        None | Some("utf-8") | Some("utf8") => Ok(()),
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::BAD_REQUEST,
            format!("charset '{other}' is not supported: request bodies are UTF-8 JSON"),
        )),
    }
}

fn unsupported(content_type: &str, hint: &str) -> ApiError {
    ApiError::unsupported_media_type(format!(
        "Content-Type '{content_type}' is not supported here: {hint}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn check_with(method: Method, path: &str, content_type: &str) -> Result<(), u16> {
        let req = TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header((header::CONTENT_TYPE, content_type))
            .insert_header((header::CONTENT_LENGTH, "2"))
            .to_http_request();
        check(&req).map_err(|e| e.status.as_u16())
    }

    #[test]
    fn media_types_parse_their_essence_and_charset() {
        let m = MediaType::parse("Application/JSON ; Charset=\"UTF-8\"");
        assert_eq!(m.essence, "application/json");
        assert_eq!(m.charset.as_deref(), Some("utf-8"));
        let m = MediaType::parse("text/plain; x=vnd.kafka.json.v2+json");
        assert_eq!(m.essence, "text/plain");
        assert_eq!(m.charset, None);
    }

    #[test]
    fn v3_takes_json_in_utf8_only() {
        let topics = "/v3/clusters/c/topics";
        assert_eq!(check_with(Method::POST, topics, "application/json"), Ok(()));
        assert_eq!(
            check_with(Method::POST, topics, "application/json; charset=utf-8"),
            Ok(())
        );
        assert_eq!(
            check_with(Method::POST, topics, "application/json; charset=latin1"),
            Err(400)
        );
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "text/plain; x=application/json",
        ] {
            assert_eq!(
                check_with(Method::POST, topics, refused),
                Err(415),
                "{refused}"
            );
        }
    }

    #[test]
    fn v2_produce_takes_only_the_embedded_formats() {
        assert_eq!(check_with(Method::POST, "/topics/t", BINARY_V2), Ok(()));
        assert_eq!(
            check_with(Method::POST, "/topics/t/partitions/0", JSON_V2),
            Ok(())
        );
        for refused in [
            "text/plain; x=vnd.kafka.json.v2+json",
            "text/plain; x=application/vnd.kafka.json.v2+json",
            "application/json",
            V2,
            "application/vnd.kafka.avro.v2+json",
        ] {
            assert_eq!(
                check_with(Method::POST, "/topics/t", refused),
                Err(415),
                "{refused}"
            );
        }
    }

    #[test]
    fn v2_consumer_bodies_take_the_v2_types() {
        let path = "/consumers/g/instances/i/offsets";
        assert_eq!(check_with(Method::POST, path, V2), Ok(()));
        assert_eq!(check_with(Method::POST, path, BINARY_V2), Ok(()));
        assert_eq!(check_with(Method::POST, path, "text/plain"), Err(415));
        assert_eq!(check_with(Method::POST, path, "application/json"), Err(415));
        assert_eq!(
            check_with(
                Method::POST,
                path,
                "application/vnd.kafka.v2+json; charset=utf-16"
            ),
            Err(400)
        );
    }

    #[test]
    fn reads_and_other_routes_are_not_checked() {
        let req = TestRequest::get()
            .uri("/topics/t/partitions/0/records")
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .to_http_request();
        assert!(check(&req).is_ok());
        assert_eq!(check_with(Method::POST, "/health", "text/plain"), Ok(()));
    }
}
