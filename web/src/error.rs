//! `ApiError`: the one place where failures become HTTP answers, Confluent REST Proxy
//! style: an HTTP status and a JSON body `{"error_code": <int>, "message": "…"}`, where
//! a five-digit code starts with the HTTP status (40403 is a 404). An engine error
//! (`BrokerError`, `GroupError`, `ConsumerError`, a mailbox error) is answered through
//! the engine's error table, `troupe_actors::ErrorKind`: its kind gives the status and
//! code, the error its message. The web layer's own refusals (bodies, content types,
//! origins) are built here from `codes`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use troupe_actors::consumer::ConsumerError;
use troupe_actors::group::GroupError;
use troupe_actors::{BrokerError, ErrorKind};

/// Confluent's codes, plus Troupe's own for cases Confluent has none for (same scheme).
/// A code an engine error answers with is read from the engine's table
/// ([`ErrorKind`]), so each is written down once.
pub mod codes {
    use troupe_actors::ErrorKind;

    /// A request the broker refuses as it stands (many kinds of it).
    pub const BAD_REQUEST: i32 = ErrorKind::InvalidRequest.confluent_code();
    /// A browser WebSocket from an origin not in `websocket.allowed.origins`, or a
    /// cross-site state-changing HTTP request.
    pub const FORBIDDEN_ORIGIN: i32 = 40301;
    /// A request to a host name the broker does not answer to (DNS rebinding).
    pub const FORBIDDEN_HOST: i32 = 40302;
    /// A Raft RPC from another cluster, or from a node that is not one of the
    /// quorum's voters (the controller listener).
    pub const FOREIGN_VOTER: i32 = 40303;
    /// v2's code for an unknown topic (v3 answers 40403).
    pub const TOPIC_NOT_FOUND: i32 = 40401;
    pub const PARTITION_NOT_FOUND: i32 = ErrorKind::UnknownPartition.confluent_code();
    pub const UNKNOWN_TOPIC_OR_PARTITION: i32 = ErrorKind::UnknownTopic.confluent_code();
    /// Confluent uses 40403 for an unknown consumer instance as well.
    pub const CONSUMER_INSTANCE_NOT_FOUND: i32 =
        ErrorKind::UnknownConsumerInstance.confluent_code();
    pub const GROUP_NOT_FOUND: i32 = ErrorKind::GroupIdNotFound.confluent_code();
    /// A WebSocket frame names a subscription the connection does not hold.
    pub const SUBSCRIPTION_NOT_FOUND: i32 = 40407;
    pub const NOT_ACCEPTABLE: i32 = 40601;
    /// A request body that did not arrive within `http.request.body.timeout.ms`.
    pub const REQUEST_TIMEOUT: i32 = 40801;
    pub const TOPIC_EXISTS: i32 = ErrorKind::TopicAlreadyExists.confluent_code();
    pub const CONSUMER_ALREADY_EXISTS: i32 = ErrorKind::ConsumerInstanceExists.confluent_code();
    /// Confluent's "illegal state": not subscribed, not assigned, subscription and
    /// assignment mixed, no offset to start from.
    pub const ILLEGAL_STATE: i32 = ErrorKind::IllegalState.confluent_code();
    pub const REBALANCE_IN_PROGRESS: i32 = ErrorKind::RebalanceInProgress.confluent_code();
    /// ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID: the committer is not (or no longer)
    /// a member of the group's current generation.
    pub const STALE_MEMBER: i32 = ErrorKind::IllegalGeneration.confluent_code();
    pub const NON_EMPTY_GROUP: i32 = ErrorKind::NonEmptyGroup.confluent_code();
    /// A WebSocket subscribe frame reuses an id the connection already holds.
    pub const SUBSCRIPTION_EXISTS: i32 = 40908;
    pub const PAYLOAD_TOO_LARGE: i32 = ErrorKind::MessageTooLarge.confluent_code();
    pub const UNSUPPORTED_MEDIA_TYPE: i32 = 41501;
    pub const OFFSET_OUT_OF_RANGE: i32 = ErrorKind::OffsetOutOfRange.confluent_code();
    pub const INVALID_KEY: i32 = 42201;
    pub const INVALID_VALUE: i32 = 42202;
    pub const INVALID_CONSUMER_CONFIG: i32 = 42204;
    pub const INVALID_PAYLOAD: i32 = 42206;
    /// An admin request with an empty body: Confluent's bean validation answers
    /// 422 with the bare status as the code.
    pub const EMPTY_BODY: i32 = 422;
    pub const TOO_MANY_REQUESTS: i32 = ErrorKind::TooManyRequests.confluent_code();
    pub const INTERNAL: i32 = ErrorKind::Internal.confluent_code();
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error_code: i32,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error_code: i32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_code,
            message: message.into(),
        }
    }
    /// An engine error of `kind`: its HTTP status and Confluent code come from the
    /// engine's table, the message from the error.
    pub fn of_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, kind.confluent_code(), message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }
    /// Malformed JSON: Confluent answers 400 with the bare status as the code.
    pub fn malformed_json(e: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, 400, format!("Malformed JSON: {e}"))
    }
    pub fn unprocessable(error_code: i32, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error_code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, 404, message)
    }
    pub fn cluster_not_found(cluster_id: &str) -> Self {
        ApiError::not_found(format!("Cluster {cluster_id} cannot be found."))
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, message)
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            message,
        )
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error_code": self.error_code, "message": self.message})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.error_code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(self.body())
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        ApiError::of_kind(e.kind(), e.to_string())
    }
}

impl From<GroupError> for ApiError {
    fn from(e: GroupError) -> Self {
        ApiError::of_kind(e.kind(), e.to_string())
    }
}

impl From<ConsumerError> for ApiError {
    fn from(e: ConsumerError) -> Self {
        ApiError::of_kind(e.kind(), e.to_string())
    }
}

/// An actor that did not answer is the engine's one mailbox error.
impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        BrokerError::mailbox(e).into()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(e: ApiError) -> (u16, i32, String) {
        (e.status.as_u16(), e.error_code, e.message)
    }

    #[test]
    fn engine_errors_answer_through_the_table() {
        assert_eq!(
            answer(BrokerError::UnknownTopic("t".into()).into()),
            (404, 40403, "unknown topic 't'".to_string())
        );
        assert_eq!(
            answer(GroupError::GroupIdNotFound("g".into()).into()),
            (404, 40405, "unknown group 'g'".to_string())
        );
        let full = ConsumerError::Broker(BrokerError::DiskFull("t-0".into()));
        assert_eq!(answer(full.into()).0, 507);
        for &kind in ErrorKind::ALL {
            let e = ApiError::of_kind(kind, "");
            assert_eq!(
                (e.status.as_u16(), e.error_code),
                (kind.http_status(), kind.confluent_code()),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_mailbox_error_is_the_same_retriable_503_on_every_path() {
        let closed = || actix::MailboxError::Closed;
        let paths = [
            ApiError::from(closed()),
            ApiError::from(ConsumerError::from(closed())),
            ApiError::from(GroupError::mailbox(closed())),
        ];
        for e in paths {
            assert_eq!((e.status.as_u16(), e.error_code), (503, 50003), "{e}");
        }
        assert!(BrokerError::mailbox(closed()).is_retriable());
        assert!(GroupError::mailbox(closed()).kind().is_retriable());
    }
}
