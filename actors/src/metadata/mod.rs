//! The metadata image: what this broker knows of the cluster — its identity, the
//! brokers, every topic with its partitions' leader, replicas, ISR and epochs — as one
//! immutable value, published on a `tokio::sync::watch` each time it changes.
//!
//! Why a published image rather than questions to an actor: routing a record or a
//! read to its partition is a *read* of this value, taken by any thread without
//! queueing in a mailbox (Kafka's brokers route from their `MetadataCache` the same
//! way). On one node the topic registry (`broker.rs`) publishes it after each change;
//! in a cluster the replayed `__cluster_metadata` records will.

mod image;

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::{Message, Recipient};
use tokio::sync::watch;

pub use image::{BrokerImage, Endpoint, MetadataImage, PartitionImage, TopicImage};

/// The one writer of the image.
pub struct MetadataPublisher {
    tx: watch::Sender<Arc<MetadataImage>>,
}

/// A reader's handle: cheap to clone, never blocks the writer.
#[derive(Clone)]
pub struct MetadataView {
    rx: watch::Receiver<Arc<MetadataImage>>,
}

impl MetadataPublisher {
    pub fn new(initial: MetadataImage) -> Self {
        let (tx, _) = watch::channel(Arc::new(initial));
        MetadataPublisher { tx }
    }

    /// Replaces the image every reader sees from now on.
    pub fn publish(&self, image: MetadataImage) {
        self.tx.send_replace(Arc::new(image));
    }

    pub fn current(&self) -> Arc<MetadataImage> {
        self.tx.borrow().clone()
    }

    pub fn view(&self) -> MetadataView {
        MetadataView {
            rx: self.tx.subscribe(),
        }
    }
}

impl MetadataView {
    /// The image as it is now (an `Arc`: holding it keeps that version alive, and
    /// blocks nobody).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.rx.borrow().clone()
    }

    /// Waits for the next published image; `false` once the publisher is gone.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// Tells `to` each time the topics' partition counts differ from `known` (what
    /// it read from the image when it started watching): a topic created, deleted or
    /// grown. The watch runs on the current arbiter until `to` is gone (noticed at
    /// the next published image) or the publisher is.
    pub fn watch_partition_counts(
        &self,
        mut known: BTreeMap<String, i32>,
        to: Recipient<TopicsChanged>,
    ) {
        let mut view = self.clone();
        // Changes published before this call are compared against `known` below.
        view.rx.mark_changed();
        actix::spawn(async move {
            while view.changed().await && to.connected() {
                let now = view.image().partition_counts();
                if now != known {
                    known = now.clone();
                    to.do_send(TopicsChanged { partitions: now });
                }
            }
        });
    }
}

/// Every topic's partition count, sent to a watcher after a topic is created,
/// deleted or grows (consumer groups rebalance on it).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct TopicsChanged {
    pub partitions: BTreeMap<String, i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;

    #[actix_rt::test]
    async fn readers_see_each_published_image_and_old_ones_stay_valid() {
        let publisher =
            MetadataPublisher::new(MetadataImage::single_node("c1".into(), NodeId::new(1)));
        let mut view = publisher.view();
        let before = view.image();
        assert!(before.topics.is_empty());
        let mut next = (*before).clone();
        next.topics.insert(
            "t".into(),
            Arc::new(TopicImage::local(
                "t",
                "id".into(),
                2,
                NodeId::new(1),
                Default::default(),
                1,
            )),
        );
        publisher.publish(next);
        assert!(view.changed().await);
        let after = view.image();
        assert_eq!(after.topic("t").map(|t| t.partitions.len()), Ok(2));
        assert!(
            before.topics.is_empty(),
            "an image taken earlier does not change"
        );
        drop(publisher);
        assert!(!view.changed().await, "the publisher is gone");
    }
}
