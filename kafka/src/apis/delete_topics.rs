//! DeleteTopics: each topic named (v1-5 by name; v6 by name or by topic id, looked up
//! in the metadata image) is deleted by the topic registry
//! (`requests::topics::delete`), whole or not at all, and answered on its own: an
//! unknown name is UNKNOWN_TOPIC_OR_PARTITION, an unknown id UNKNOWN_TOPIC_ID, a topic
//! named twice (or by both name and id) INVALID_REQUEST, an internal topic
//! INVALID_TOPIC_EXCEPTION. `timeout_ms` is not waited on: the registry answers once
//! the topic is gone from disk and from the image.

use futures::future::join_all;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::metadata::MetadataImage;
use troupe_actors::requests::topics;
use uuid::Uuid;

use super::admin::{named_twice, outcome, repeated, Refusal};
use super::{Session, Since};

/// Kafka's UNKNOWN_TOPIC_ID.
const UNKNOWN_TOPIC_ID: i16 = 100;

/// One topic to delete, as asked and as resolved.
struct Target {
    name: Option<String>,
    id: Uuid,
    /// The topic's name, or why it is not deleted.
    resolved: Result<String, Refusal>,
}

pub async fn handle(
    session: &Session,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let image = session.engine.image();
    let mut targets: Vec<Target> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| resolve(&image, t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| resolve(&image, Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    // A topic named twice, by name or by id, is refused in every copy.
    let names: Vec<Option<String>> = targets.iter().map(|t| t.resolved.clone().ok()).collect();
    for (target, twice) in targets.iter_mut().zip(repeated(&names)) {
        if twice && target.resolved.is_ok() {
            target.resolved = Err(named_twice("the topic"));
        }
    }
    let deletions = targets.into_iter().map(|target| async move {
        let deleted = match &target.resolved {
            Ok(name) => topics::delete(&session.engine, &session.context, name)
                .await
                .map_err(Refusal::from),
            Err(refusal) => Err(refusal.clone()),
        };
        let (code, message) = outcome(&deleted);
        let name = target.resolved.ok().or(target.name);
        DeletableTopicResult::default()
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
            .since(version, 6, |m| m.with_topic_id(target.id))
            .with_error_code(code)
            .since(version, 5, |m| m.with_error_message(message))
    });
    DeleteTopicsResponse::default().with_responses(join_all(deletions).await)
}

/// Finds the topic a v6 entry names (by name or by id, not both) in the image.
fn resolve(image: &MetadataImage, name: Option<String>, id: Uuid) -> Target {
    let resolved = match (&name, id.is_nil()) {
        (Some(_), false) => Err(Refusal::invalid_request(
            "a topic may be named by its name or by its id, not both",
        )),
        (None, true) => Err(Refusal::invalid_request(
            "neither a topic name nor a topic id was given",
        )),
        (Some(name), true) => Ok(name.clone()),
        (None, false) => image
            .topics
            .values()
            .find(|t| crate::topic_id(&t.topic_id) == id)
            .map(|t| t.name.clone())
            .ok_or_else(|| Refusal::new(UNKNOWN_TOPIC_ID, format!("no topic has id {id}"))),
    };
    // The answer names the topic's id whenever it is known.
    let id = match (&resolved, id.is_nil()) {
        (Ok(name), true) => image
            .topic(name)
            .map(|t| crate::topic_id(&t.topic_id))
            .unwrap_or(id),
        _ => id,
    };
    Target { name, id, resolved }
}
