//! ApiVersions: the keys and versions this listener serves — [`SUPPORTED`], with the
//! one exception Kafka 4 makes too (see [`served`]).
//! A client asking with a version newer than served gets UNSUPPORTED_VERSION with the
//! same list, in version 0 (the connection answers that case itself, see
//! [`unsupported`]), and retries with one it finds there.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::SUPPORTED;

/// Kafka's UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = 35;

pub fn handle(_request: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(served())
}

/// The answer to an ApiVersions request of a version this listener cannot decode.
pub fn unsupported() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(UNSUPPORTED_VERSION)
        .with_api_keys(served())
}

/// What is advertised: [`SUPPORTED`], except that Produce is listed from version 0,
/// as Kafka 4 lists it (KAFKA-18659): librdkafka enables message format v1 — and with
/// it compression — only for a broker listing Produce v2. Requests of those versions
/// are still refused (their connection closed), as Kafka 4 refuses them.
fn served() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            let min = if key == ApiKey::Produce { 0 } else { min };
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Message;

    #[test]
    fn every_advertised_range_is_one_the_codec_can_decode() {
        use kafka_protocol::messages::*;
        for &(key, min, max) in SUPPORTED {
            let range = key.valid_versions();
            assert!(min <= max, "{key:?}");
            assert!(
                range.min <= min && max <= range.max,
                "{key:?}: {min}..={max} outside {range:?}"
            );
        }
        assert_eq!(ApiVersionsRequest::VERSIONS.max, 4);
    }
}
