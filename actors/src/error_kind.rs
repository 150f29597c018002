//! `ErrorKind`: the engine's one table of error kinds, in the spirit of Kafka's
//! `org.apache.kafka.common.protocol.Errors`. Every engine error (`BrokerError`,
//! `GroupError`, `ConsumerError`) says which kind it is; the kind alone decides the
//! Kafka error code a Kafka listener answers with, the HTTP status and Confluent error
//! code the REST layer answers with, and whether the same request may succeed if sent
//! again shortly. The errors' messages say only what happened, in no protocol's words.
//!
//! Kinds may share a Kafka code where Kafka has one code for what REST tells apart
//! (an unknown topic and an unknown partition are both UNKNOWN_TOPIC_OR_PARTITION;
//! a full disk, a failed file and an offline partition are all KAFKA_STORAGE_ERROR),
//! and may share a Confluent code where Confluent lumps them (400 / 40002). The
//! consumer-instance kinds exist only for REST and WebSocket clients, whose consumer
//! state the broker keeps; their Kafka code is the nearest one a Kafka broker has.

/// One row of the table: what a kind answers in each protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorMapping {
    /// The Kafka code's name, as Kafka's `Errors` spells it.
    pub kafka_name: &'static str,
    /// Kafka's numeric error code (an INT16 on the wire).
    pub kafka_code: i16,
    pub http_status: u16,
    /// Confluent REST Proxy's five-digit code: mostly the HTTP status, then two digits.
    pub confluent_code: i32,
    /// The same request may succeed if sent again shortly (the condition passes by
    /// itself: a restart, a queue draining, space freed).
    pub retriable: bool,
}

/// Declares `ErrorKind` and its table from one line per kind, so that a kind cannot
/// exist without its row.
macro_rules! error_kinds {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident => $kafka_name:ident($kafka_code:literal), $http:literal / $confluent:literal, $retry:ident;
    )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $( $(#[doc = $doc])* $kind, )*
        }

        impl ErrorKind {
            /// Every kind, in table order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind),*];

            /// The kind's row of the table.
            pub const fn mapping(self) -> ErrorMapping {
                match self {
                    $(ErrorKind::$kind => ErrorMapping {
                        kafka_name: stringify!($kafka_name),
                        kafka_code: $kafka_code,
                        http_status: $http,
                        confluent_code: $confluent,
                        retriable: retriable!($retry),
                    },)*
                }
            }
        }
    };
}

macro_rules! retriable {
    (retry) => {
        true
    };
    (no_retry) => {
        false
    };
}

error_kinds! {
    /// A failure the engine did not expect: a bug, or a panic it caught.
    Internal => UNKNOWN_SERVER_ERROR(-1), 500 / 50001, no_retry;
    /// A read or lookup outside the log's offsets.
    OffsetOutOfRange => OFFSET_OUT_OF_RANGE(1), 416 / 41601, no_retry;
    /// Stored records that fail their check or cannot be decoded: they cannot be
    /// served (the ones after them can).
    CorruptMessage => CORRUPT_MESSAGE(2), 500 / 50004, no_retry;
    UnknownTopic => UNKNOWN_TOPIC_OR_PARTITION(3), 404 / 40403, no_retry;
    UnknownPartition => UNKNOWN_TOPIC_OR_PARTITION(3), 404 / 40402, no_retry;
    /// A partition restarting after a failure, or an actor the request needs not
    /// running (stopped, or not started yet).
    Unavailable => LEADER_NOT_AVAILABLE(5), 503 / 50003, retry;
    /// Sent to a broker that does not lead the partition (any more): ask its leader,
    /// once the metadata names it.
    NotLeaderOrFollower => NOT_LEADER_OR_FOLLOWER(6), 503 / 50003, retry;
    /// An `acks=all` write to a partition with fewer in-sync replicas than its
    /// `min.insync.replicas`: nothing was appended; it may succeed once the ISR grows.
    NotEnoughReplicas => NOT_ENOUGH_REPLICAS(19), 503 / 50301, retry;
    /// An `acks=all` write that was appended, but the ISR shrank below
    /// `min.insync.replicas` before every in-sync replica had it: not acknowledged
    /// (the records may still be read later). Retrying may duplicate it.
    NotEnoughReplicasAfterAppend => NOT_ENOUGH_REPLICAS_AFTER_APPEND(20), 503 / 50301, retry;
    /// A record batch above `max.message.bytes`.
    MessageTooLarge => MESSAGE_TOO_LARGE(10), 413 / 41301, no_retry;
    OffsetMetadataTooLarge => OFFSET_METADATA_TOO_LARGE(12), 400 / 40002, no_retry;
    /// A group coordinator restarting, or not answering.
    CoordinatorNotAvailable => COORDINATOR_NOT_AVAILABLE(15), 503 / 50003, retry;
    /// The group's coordinator is on another broker (the leader of its
    /// `__consumer_offsets` partition), or moved there.
    NotCoordinator => NOT_COORDINATOR(16), 503 / 50003, retry;
    /// A topic name Kafka's rules refuse, or an internal topic written to.
    InvalidTopic => INVALID_TOPIC_EXCEPTION(17), 400 / 40002, no_retry;
    /// The member's generation is not the group's: it must rejoin.
    IllegalGeneration => ILLEGAL_GENERATION(22), 409 / 40905, no_retry;
    /// No assignor every member supports.
    InconsistentGroupProtocol => INCONSISTENT_GROUP_PROTOCOL(23), 409 / 40903, no_retry;
    InvalidGroupId => INVALID_GROUP_ID(24), 400 / 40002, no_retry;
    /// The group does not know the member (never joined, or its session ran out).
    UnknownMemberId => UNKNOWN_MEMBER_ID(25), 409 / 40905, no_retry;
    InvalidSessionTimeout => INVALID_SESSION_TIMEOUT(26), 400 / 40002, no_retry;
    RebalanceInProgress => REBALANCE_IN_PROGRESS(27), 409 / 40904, no_retry;
    TopicAlreadyExists => TOPIC_ALREADY_EXISTS(36), 409 / 40901, no_retry;
    /// A partition count refused: below one, not above the current count, or past
    /// what the open-file limit carries.
    InvalidPartitions => INVALID_PARTITIONS(37), 400 / 40002, no_retry;
    InvalidReplicationFactor => INVALID_REPLICATION_FACTOR(38), 400 / 40002, no_retry;
    InvalidConfig => INVALID_CONFIG(40), 400 / 40002, no_retry;
    InvalidRequest => INVALID_REQUEST(42), 400 / 40002, no_retry;
    /// Asked of a node that is not the active controller (any more): ask the one
    /// that is, once it is known.
    NotController => NOT_CONTROLLER(41), 503 / 50003, retry;
    /// A broker's heartbeat or change for a registration that is not its current one.
    StaleBrokerEpoch => STALE_BROKER_EPOCH(77), 409 / 40903, no_retry;
    /// A leader's request in a leader epoch older than the partition's: another
    /// replica leads now (a deposed leader's ISR change, a fetch of a stale epoch).
    FencedLeaderEpoch => FENCED_LEADER_EPOCH(74), 409 / 40903, retry;
    /// An ISR change made against a partition epoch that is not the current one.
    InvalidUpdateVersion => INVALID_UPDATE_VERSION(95), 409 / 40903, retry;
    /// What the topic's configuration forbids (deleting records of a topic that is
    /// only compacted).
    PolicyViolation => POLICY_VIOLATION(44), 400 / 40002, no_retry;
    /// A client's batch that fails its checks; nothing of it is written.
    InvalidRecord => INVALID_RECORD(87), 400 / 40002, no_retry;
    /// A client's batch damaged on the way (its checksum fails): sending it again may work.
    CorruptBatch => CORRUPT_MESSAGE(2), 400 / 40002, retry;
    /// An idempotent producer's batch that does not continue its sequence (and is
    /// not a retry of one of its last five batches). Only Kafka clients send such
    /// batches; the HTTP row is for completeness.
    OutOfOrderSequence => OUT_OF_ORDER_SEQUENCE_NUMBER(45), 400 / 40002, no_retry;
    /// An idempotent producer's batch in an epoch older than its current one.
    InvalidProducerEpoch => INVALID_PRODUCER_EPOCH(47), 400 / 40002, no_retry;
    /// A transactional id or transactional batch: transactions are not supported
    /// yet. Kafka's code is TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which every
    /// client (the Java client, librdkafka) treats as final at once, where the
    /// retriable COORDINATOR_NOT_AVAILABLE would have them retry until they time out;
    /// this broker indeed allows no transactional id.
    TransactionsUnsupported => TRANSACTIONAL_ID_AUTHORIZATION_FAILED(53), 501 / 50101, no_retry;
    /// A file or directory of the broker's that could not be read or written (not
    /// for want of space), or holds what this broker cannot read.
    StorageError => KAFKA_STORAGE_ERROR(56), 500 / 50002, no_retry;
    /// The file system holding the log directory is full: the write was refused and
    /// nothing of it stored; writes succeed again once space is freed.
    DiskFull => KAFKA_STORAGE_ERROR(56), 507 / 50701, retry;
    /// A partition that failed past its restart budget, or was never opened.
    PartitionOffline => KAFKA_STORAGE_ERROR(56), 503 / 50302, no_retry;
    NonEmptyGroup => NON_EMPTY_GROUP(68), 409 / 40906, no_retry;
    GroupIdNotFound => GROUP_ID_NOT_FOUND(69), 404 / 40405, no_retry;
    GroupMaxSizeReached => GROUP_MAX_SIZE_REACHED(81), 409 / 40903, no_retry;
    /// Offsets of a topic the group's members subscribe to cannot be deleted.
    GroupSubscribedToTopic => GROUP_SUBSCRIBED_TO_TOPIC(86), 409 / 40907, no_retry;
    /// A limit on things waiting or open at once is reached (parked fetches,
    /// consumer instances): it frees up as they finish.
    TooManyRequests => THROTTLING_QUOTA_EXCEEDED(89), 429 / 42901, retry;
    /// A user (or a user's credential for a mechanism) that does not exist.
    ResourceNotFound => RESOURCE_NOT_FOUND(91), 404 / 40404, no_retry;
    /// A user that already exists, created again.
    DuplicateResource => DUPLICATE_RESOURCE(92), 409 / 40908, no_retry;
    /// A credential refused: an empty password, iterations out of bounds, a user
    /// name that cannot be used.
    UnacceptableCredential => UNACCEPTABLE_CREDENTIAL(93), 400 / 40002, no_retry;
    /// A SASL exchange or HTTP credentials that did not authenticate: a wrong user
    /// name or password (which of the two is not said).
    SaslAuthenticationFailed => SASL_AUTHENTICATION_FAILED(58), 401 / 40101, no_retry;
    /// Managing users or ACLs without the right: unauthenticated on a broker with
    /// authentication, or not one of `super.users`.
    ClusterAuthorizationFailed => CLUSTER_AUTHORIZATION_FAILED(31), 403 / 40301, no_retry;
    /// The authorizer refused an operation on a topic.
    TopicAuthorizationFailed => TOPIC_AUTHORIZATION_FAILED(29), 403 / 40301, no_retry;
    /// The authorizer refused an operation on a consumer group.
    GroupAuthorizationFailed => GROUP_AUTHORIZATION_FAILED(30), 403 / 40301, no_retry;
    /// The authorizer refused an operation on a transactional id.
    TransactionalIdAuthorizationFailed => TRANSACTIONAL_ID_AUTHORIZATION_FAILED(53), 403 / 40301, no_retry;
    /// A SASL mechanism the listener does not offer.
    UnsupportedSaslMechanism => UNSUPPORTED_SASL_MECHANISM(33), 400 / 40002, no_retry;
    /// A SASL request out of turn (authenticating before the handshake, or on a
    /// listener with no SASL).
    IllegalSaslState => ILLEGAL_SASL_STATE(34), 400 / 40002, no_retry;
    /// A REST consumer instance that does not exist, or has closed.
    UnknownConsumerInstance => UNKNOWN_MEMBER_ID(25), 404 / 40403, no_retry;
    /// A REST consumer instance of that name exists in the group.
    ConsumerInstanceExists => INVALID_REQUEST(42), 409 / 40902, no_retry;
    /// A REST consumer instance asked for what its state does not allow: a fetch
    /// before subscribing, subscription and assignment mixed, a partition it is
    /// not assigned, no offset to start from.
    IllegalState => INVALID_REQUEST(42), 409 / 40903, no_retry;
}

impl ErrorKind {
    /// The first kind of the table with Kafka's `code` (what another broker's
    /// answer means here).
    pub fn of_kafka_code(code: i16) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|k| k.kafka_code() == code)
    }

    /// Kafka's name of `code`, or the number when the table has no such code.
    pub fn name_of_code(code: i16) -> String {
        ErrorKind::of_kafka_code(code)
            .map(|k| k.kafka_name().to_string())
            .unwrap_or_else(|| format!("error code {code}"))
    }

    pub const fn kafka_code(self) -> i16 {
        self.mapping().kafka_code
    }

    pub const fn kafka_name(self) -> &'static str {
        self.mapping().kafka_name
    }

    pub const fn http_status(self) -> u16 {
        self.mapping().http_status
    }

    pub const fn confluent_code(self) -> i32 {
        self.mapping().confluent_code
    }

    pub const fn is_retriable(self) -> bool {
        self.mapping().retriable
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    /// Kafka's own numbers for the codes the table uses (`Errors.java`), written out
    /// apart from the table so that a slip in one is caught by the other.
    const KAFKA_CODES: &[(&str, i16)] = &[
        ("UNKNOWN_SERVER_ERROR", -1),
        ("OFFSET_OUT_OF_RANGE", 1),
        ("CORRUPT_MESSAGE", 2),
        ("UNKNOWN_TOPIC_OR_PARTITION", 3),
        ("LEADER_NOT_AVAILABLE", 5),
        ("MESSAGE_TOO_LARGE", 10),
        ("OFFSET_METADATA_TOO_LARGE", 12),
        ("COORDINATOR_NOT_AVAILABLE", 15),
        ("INVALID_TOPIC_EXCEPTION", 17),
        ("ILLEGAL_GENERATION", 22),
        ("INCONSISTENT_GROUP_PROTOCOL", 23),
        ("INVALID_GROUP_ID", 24),
        ("UNKNOWN_MEMBER_ID", 25),
        ("INVALID_SESSION_TIMEOUT", 26),
        ("REBALANCE_IN_PROGRESS", 27),
        ("TOPIC_ALREADY_EXISTS", 36),
        ("INVALID_PARTITIONS", 37),
        ("INVALID_REPLICATION_FACTOR", 38),
        ("INVALID_CONFIG", 40),
        ("INVALID_REQUEST", 42),
        ("POLICY_VIOLATION", 44),
        ("OUT_OF_ORDER_SEQUENCE_NUMBER", 45),
        ("INVALID_PRODUCER_EPOCH", 47),
        ("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", 53),
        ("KAFKA_STORAGE_ERROR", 56),
        ("NON_EMPTY_GROUP", 68),
        ("GROUP_ID_NOT_FOUND", 69),
        ("GROUP_MAX_SIZE_REACHED", 81),
        ("GROUP_SUBSCRIBED_TO_TOPIC", 86),
        ("NOT_CONTROLLER", 41),
        ("STALE_BROKER_EPOCH", 77),
        ("NOT_LEADER_OR_FOLLOWER", 6),
        ("NOT_COORDINATOR", 16),
        ("NOT_ENOUGH_REPLICAS", 19),
        ("NOT_ENOUGH_REPLICAS_AFTER_APPEND", 20),
        ("FENCED_LEADER_EPOCH", 74),
        ("INVALID_UPDATE_VERSION", 95),
        ("INVALID_RECORD", 87),
        ("THROTTLING_QUOTA_EXCEEDED", 89),
        ("RESOURCE_NOT_FOUND", 91),
        ("DUPLICATE_RESOURCE", 92),
        ("UNACCEPTABLE_CREDENTIAL", 93),
        ("SASL_AUTHENTICATION_FAILED", 58),
        ("UNSUPPORTED_SASL_MECHANISM", 33),
        ("ILLEGAL_SASL_STATE", 34),
        ("CLUSTER_AUTHORIZATION_FAILED", 31),
        ("TOPIC_AUTHORIZATION_FAILED", 29),
        ("GROUP_AUTHORIZATION_FAILED", 30),
    ];

    #[test]
    fn every_kind_has_a_whole_row() {
        let kafka: HashMap<&str, i16> = KAFKA_CODES.iter().copied().collect();
        let mut seen = HashSet::new();
        for &kind in ErrorKind::ALL {
            assert!(seen.insert(kind), "{kind:?} listed twice");
            let row = kind.mapping();
            assert_eq!(
                kafka.get(row.kafka_name),
                Some(&row.kafka_code),
                "{kind:?}: {} is not Kafka's {}",
                row.kafka_code,
                row.kafka_name
            );
            assert!(
                (400..600).contains(&row.http_status),
                "{kind:?}: HTTP {} is no error",
                row.http_status
            );
            // Confluent's scheme: five digits, of the status's class (the status
            // itself, then two digits, but for Confluent's 50003 "retriable" which
            // Troupe answers with 503).
            assert!(
                (10_000..100_000).contains(&row.confluent_code)
                    && row.confluent_code / 10_000 == i32::from(row.http_status / 100),
                "{kind:?}: {} is not a code for HTTP {}",
                row.confluent_code,
                row.http_status
            );
        }
    }

    #[test]
    fn kinds_share_a_kafka_code_only_where_kafka_has_one_for_them() {
        // Kafka's codes are distinct: one name, one number, both ways.
        let mut by_code: HashMap<i16, &str> = HashMap::new();
        for &kind in ErrorKind::ALL {
            let name = *by_code
                .entry(kind.kafka_code())
                .or_insert(kind.kafka_name());
            assert_eq!(name, kind.kafka_name(), "{kind:?}");
        }
        // And the kinds that share one are those REST tells apart and Kafka does not.
        let shared: Vec<Vec<ErrorKind>> = by_code
            .keys()
            .map(|&code| {
                ErrorKind::ALL
                    .iter()
                    .copied()
                    .filter(|k| k.kafka_code() == code)
                    .collect::<Vec<_>>()
            })
            .filter(|kinds| kinds.len() > 1)
            .collect();
        let expected: HashSet<Vec<ErrorKind>> = [
            vec![ErrorKind::UnknownTopic, ErrorKind::UnknownPartition],
            // Stored data that fails its check, and a client's batch damaged on the way.
            vec![ErrorKind::CorruptMessage, ErrorKind::CorruptBatch],
            vec![
                ErrorKind::UnknownMemberId,
                ErrorKind::UnknownConsumerInstance,
            ],
            vec![
                ErrorKind::InvalidRequest,
                ErrorKind::ConsumerInstanceExists,
                ErrorKind::IllegalState,
            ],
            vec![
                ErrorKind::StorageError,
                ErrorKind::DiskFull,
                ErrorKind::PartitionOffline,
            ],
            // Kafka answers both with TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
            vec![
                ErrorKind::TransactionsUnsupported,
                ErrorKind::TransactionalIdAuthorizationFailed,
            ],
        ]
        .into_iter()
        .collect();
        assert_eq!(shared.into_iter().collect::<HashSet<_>>(), expected);
    }

    #[test]
    fn spot_checks() {
        let row = |k: ErrorKind| {
            (
                k.kafka_code(),
                k.http_status(),
                k.confluent_code(),
                k.is_retriable(),
            )
        };
        assert_eq!(row(ErrorKind::UnknownTopic), (3, 404, 40403, false));
        assert_eq!(row(ErrorKind::UnknownPartition), (3, 404, 40402, false));
        assert_eq!(row(ErrorKind::OffsetOutOfRange), (1, 416, 41601, false));
        assert_eq!(row(ErrorKind::TopicAlreadyExists), (36, 409, 40901, false));
        assert_eq!(row(ErrorKind::MessageTooLarge), (10, 413, 41301, false));
        assert_eq!(row(ErrorKind::Unavailable), (5, 503, 50003, true));
        assert_eq!(
            row(ErrorKind::CoordinatorNotAvailable),
            (15, 503, 50003, true)
        );
        assert_eq!(row(ErrorKind::DiskFull), (56, 507, 50701, true));
        assert_eq!(row(ErrorKind::GroupIdNotFound), (69, 404, 40405, false));
        assert_eq!(row(ErrorKind::Internal), (-1, 500, 50001, false));
        assert_eq!(row(ErrorKind::OutOfOrderSequence), (45, 400, 40002, false));
        assert_eq!(
            row(ErrorKind::InvalidProducerEpoch),
            (47, 400, 40002, false)
        );
        assert_eq!(
            row(ErrorKind::TransactionsUnsupported),
            (53, 501, 50101, false)
        );
        assert_eq!(
            ErrorKind::UnknownTopic.kafka_name(),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
    }
}
