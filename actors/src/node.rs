//! Starting and stopping a broker node's actors, in order: the broker (which loads the
//! topic registry and starts the partition actors, each recovering its log), the log
//! cleaner, then the group manager (which replays `__consumer_offsets`). The web
//! layer is started on top by the binary. Every actor that owns state runs under the
//! one restart policy of [`crate::supervision`], with the budget of
//! [`BrokerConfig::restart_policy`].

use actix::prelude::*;

use crate::broker::{Broker, ShutdownBroker};
use crate::broker_config::BrokerConfig;
use crate::cleaner::{CleanerSettings, LogCleaner};
use crate::consumer::ConsumerRegistry;
use crate::error::BrokerResult;
use crate::group::GroupManager;
use crate::requests::Engine;

/// A running node: the request layer's handle, over its actors.
#[derive(Clone)]
pub struct Node {
    pub engine: Engine,
}

impl Node {
    /// Starts the node's actors. Must be called inside a running actix system.
    pub async fn start(config: BrokerConfig) -> BrokerResult<Node> {
        let restarts = config.restart_policy();
        let settings = CleanerSettings {
            threads: config.cleaner_threads,
            dedupe_buffer_bytes: config.cleaner_dedupe_buffer_bytes,
            backoff: std::time::Duration::from_millis(config.cleaner_backoff_ms.max(1)),
            restarts,
        };
        let enabled = config.cleaner_enable;
        let group_config = config.groups.clone();
        let consumer_config = config.consumers.clone();
        let broker = Broker::open(config)?;
        let (metadata, replicas) = broker.views();
        let broker = broker.start();
        let cleaner = enabled.then(|| LogCleaner::start(broker.clone(), settings));
        let groups = GroupManager::start(broker.clone(), group_config, restarts).await?;
        let consumers =
            ConsumerRegistry::new(consumer_config, broker.clone(), groups.clone(), restarts)
                .start_supervised();
        Ok(Node {
            engine: Engine::new(metadata, replicas, broker, groups, consumers, cleaner),
        })
    }

    /// Closes every partition cleanly (flush, trim indexes, clean-shutdown marker).
    pub async fn shutdown(&self) {
        if let Err(e) = self.engine.broker.send(ShutdownBroker).await {
            log::warn!("broker shutdown: {e}");
        }
    }
}
