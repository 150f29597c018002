//! `ApiError`: the one place where failures become HTTP answers, Confluent REST Proxy
//! style: an HTTP status and a JSON body `{"error_code": <int>, "message": "…"}`, where
//! a five-digit code starts with the HTTP status (40403 is a 404).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use troupe_actors::consumer::ConsumerError;
use troupe_actors::group::GroupError;
use troupe_actors::BrokerError;

/// Confluent's codes, plus Troupe's own for cases Confluent has none for (same scheme).
pub mod codes {
    pub const BAD_REQUEST: i32 = 40002;
    /// A browser WebSocket from an origin not in `websocket.allowed.origins`, or a
    /// cross-site state-changing HTTP request.
    pub const FORBIDDEN_ORIGIN: i32 = 40301;
    /// A request to a host name the broker does not answer to (DNS rebinding).
    pub const FORBIDDEN_HOST: i32 = 40302;
    pub const TOPIC_NOT_FOUND: i32 = 40401;
    pub const PARTITION_NOT_FOUND: i32 = 40402;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i32 = 40403;
    /// Confluent uses 40403 for an unknown consumer instance as well.
    pub const CONSUMER_INSTANCE_NOT_FOUND: i32 = 40403;
    pub const GROUP_NOT_FOUND: i32 = 40405;
    /// A WebSocket frame names a subscription the connection does not hold.
    pub const SUBSCRIPTION_NOT_FOUND: i32 = 40407;
    pub const NOT_ACCEPTABLE: i32 = 40601;
    /// A request body that did not arrive within `http.request.body.timeout.ms`.
    pub const REQUEST_TIMEOUT: i32 = 40801;
    pub const TOPIC_EXISTS: i32 = 40901;
    pub const CONSUMER_ALREADY_EXISTS: i32 = 40902;
    /// Confluent's "illegal state": not subscribed, not assigned, subscription and
    /// assignment mixed, no offset to start from.
    pub const ILLEGAL_STATE: i32 = 40903;
    pub const REBALANCE_IN_PROGRESS: i32 = 40904;
    /// ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID: the committer is not (or no longer)
    /// a member of the group's current generation.
    pub const STALE_MEMBER: i32 = 40905;
    pub const NON_EMPTY_GROUP: i32 = 40906;
    /// A WebSocket subscribe frame reuses an id the connection already holds.
    pub const SUBSCRIPTION_EXISTS: i32 = 40908;
    pub const PAYLOAD_TOO_LARGE: i32 = 41301;
    pub const UNSUPPORTED_MEDIA_TYPE: i32 = 41501;
    pub const OFFSET_OUT_OF_RANGE: i32 = 41601;
    pub const INVALID_KEY: i32 = 42201;
    pub const INVALID_VALUE: i32 = 42202;
    pub const INVALID_CONSUMER_CONFIG: i32 = 42204;
    pub const INVALID_PAYLOAD: i32 = 42206;
    /// An admin request with an empty body: Confluent's bean validation answers
    /// 422 with the bare status as the code.
    pub const EMPTY_BODY: i32 = 422;
    pub const TOO_MANY_REQUESTS: i32 = 42901;
    pub const INTERNAL: i32 = 50001;
    pub const KAFKA_ERROR: i32 = 50002;
    pub const RETRIABLE: i32 = 50003;
    /// Kafka's CORRUPT_MESSAGE on a read: stored offsets fail their check and cannot
    /// be served (the message names them; the offsets after them can be read).
    pub const CORRUPT_RECORD: i32 = 50004;
    pub const UNAVAILABLE: i32 = 50302;
    /// The disk holding the log directory is full: the write was refused, nothing of
    /// it stored; reads continue and writes resume once space is freed. HTTP 507
    /// (Insufficient Storage) says exactly that; Confluent has no code of its own.
    pub const DISK_FULL: i32 = 50701;
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
        use BrokerError as E;
        let message = e.to_string();
        let (status, code) = match e {
            E::UnknownTopic(_) => (StatusCode::NOT_FOUND, codes::UNKNOWN_TOPIC_OR_PARTITION),
            E::UnknownPartition { .. } => (StatusCode::NOT_FOUND, codes::PARTITION_NOT_FOUND),
            E::TopicExists(_) => (StatusCode::CONFLICT, codes::TOPIC_EXISTS),
            E::InvalidTopicName { .. }
            | E::InvalidPartitions(_)
            | E::InvalidReplicationFactor { .. }
            | E::InvalidConfig { .. }
            | E::InvalidRequest(_)
            | E::TopicIsInternal(_) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            E::RecordTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE),
            E::OffsetOutOfRange { .. } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                codes::OFFSET_OUT_OF_RANGE,
            ),
            E::Busy { .. } => (StatusCode::TOO_MANY_REQUESTS, codes::TOO_MANY_REQUESTS),
            E::PartitionOffline { .. } => (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE),
            E::PartitionRestarting { .. } => (StatusCode::SERVICE_UNAVAILABLE, codes::RETRIABLE),
            E::DiskFull(_) => (StatusCode::INSUFFICIENT_STORAGE, codes::DISK_FULL),
            E::CorruptRecord { .. } => (StatusCode::INTERNAL_SERVER_ERROR, codes::CORRUPT_RECORD),
            E::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::KAFKA_ERROR),
            E::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, codes::RETRIABLE),
            E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        };
        ApiError::new(status, code, message)
    }
}

impl From<GroupError> for ApiError {
    fn from(e: GroupError) -> Self {
        use GroupError as E;
        let message = e.to_string();
        let (status, code) = match e {
            E::GroupIdNotFound(_) => (StatusCode::NOT_FOUND, codes::GROUP_NOT_FOUND),
            E::UnknownTopic(_) => (StatusCode::NOT_FOUND, codes::UNKNOWN_TOPIC_OR_PARTITION),
            E::UnknownPartition { .. } => (StatusCode::NOT_FOUND, codes::PARTITION_NOT_FOUND),
            E::NonEmptyGroup(_) => (StatusCode::CONFLICT, codes::NON_EMPTY_GROUP),
            E::RebalanceInProgress => (StatusCode::CONFLICT, codes::REBALANCE_IN_PROGRESS),
            E::IllegalGeneration { .. } | E::UnknownMemberId(_) => {
                (StatusCode::CONFLICT, codes::STALE_MEMBER)
            }
            E::PartitionNotAssigned { .. }
            | E::InconsistentGroupProtocol
            | E::GroupMaxSizeReached(_) => (StatusCode::CONFLICT, codes::ILLEGAL_STATE),
            E::InvalidGroupId(_)
            | E::InvalidSessionTimeout { .. }
            | E::InvalidCommitOffset(_)
            | E::OffsetMetadataTooLarge { .. } => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            E::CoordinatorNotAvailable(_) => (StatusCode::SERVICE_UNAVAILABLE, codes::RETRIABLE),
        };
        ApiError::new(status, code, message)
    }
}

impl From<ConsumerError> for ApiError {
    fn from(e: ConsumerError) -> Self {
        use ConsumerError as E;
        let message = e.to_string();
        let (status, code) = match e {
            E::Group(e) => return e.into(),
            E::Broker(e) => return e.into(),
            E::UnknownInstance { .. } | E::Closed => {
                (StatusCode::NOT_FOUND, codes::CONSUMER_INSTANCE_NOT_FOUND)
            }
            E::InstanceExists { .. } => (StatusCode::CONFLICT, codes::CONSUMER_ALREADY_EXISTS),
            E::TooManyInstances(_) => (StatusCode::TOO_MANY_REQUESTS, codes::TOO_MANY_REQUESTS),
            E::IllegalState(_) | E::NotAssigned { .. } | E::NoOffset { .. } => {
                (StatusCode::CONFLICT, codes::ILLEGAL_STATE)
            }
        };
        ApiError::new(status, code, message)
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::RETRIABLE,
            format!("broker unavailable: {e}"),
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
