//! Starting and stopping a broker node's actors, in order: the broker (which loads the
//! topic registry and starts the partition actors, each recovering its log), the log
//! cleaner, then the group manager (which replays `__consumer_offsets`). The web
//! layer is started on top by the binary.

use actix::prelude::*;

use crate::broker::{Broker, ShutdownBroker};
use crate::broker_config::BrokerConfig;
use crate::cleaner::{CleanerSettings, LogCleaner};
use crate::consumer::ConsumerRegistry;
use crate::error::BrokerResult;
use crate::group::GroupManager;

/// A running node: the addresses the web layer talks to.
#[derive(Clone)]
pub struct Node {
    pub broker: Addr<Broker>,
    /// `None` when `log.cleaner.enable` is false.
    pub cleaner: Option<Addr<LogCleaner>>,
    pub groups: Addr<GroupManager>,
    pub consumers: Addr<ConsumerRegistry>,
}

impl Node {
    /// Starts the node's actors. Must be called inside a running actix system.
    pub async fn start(config: BrokerConfig) -> BrokerResult<Node> {
        let settings = CleanerSettings {
            threads: config.cleaner_threads,
            dedupe_buffer_bytes: config.cleaner_dedupe_buffer_bytes,
            backoff: std::time::Duration::from_millis(config.cleaner_backoff_ms.max(1)),
        };
        let enabled = config.cleaner_enable;
        let group_config = config.groups.clone();
        let consumer_config = config.consumers.clone();
        let broker = Broker::open(config)?.start();
        let cleaner = enabled.then(|| LogCleaner::start(broker.clone(), settings));
        let groups = GroupManager::start(broker.clone(), group_config).await?;
        let consumers =
            ConsumerRegistry::new(consumer_config, broker.clone(), groups.clone()).start();
        Ok(Node {
            broker,
            cleaner,
            groups,
            consumers,
        })
    }

    /// Closes every partition cleanly (flush, trim indexes, clean-shutdown marker).
    pub async fn shutdown(&self) {
        if let Err(e) = self.broker.send(ShutdownBroker).await {
            log::warn!("broker shutdown: {e}");
        }
    }
}
