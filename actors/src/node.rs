//! Starting and stopping a broker node's actors, in order: the broker (which loads the
//! topic registry and starts the partition actors, each recovering its log). The web
//! layer is started on top by the binary.

use actix::prelude::*;

use crate::broker::{Broker, ShutdownBroker};
use crate::broker_config::BrokerConfig;
use crate::error::BrokerResult;

/// A running node: the addresses the web layer talks to.
#[derive(Clone)]
pub struct Node {
    pub broker: Addr<Broker>,
}

impl Node {
    /// Starts the node's actors. Must be called inside a running actix system.
    pub fn start(config: BrokerConfig) -> BrokerResult<Node> {
        let broker = Broker::open(config)?.start();
        Ok(Node { broker })
    }

    /// Closes every partition cleanly (flush, trim indexes, clean-shutdown marker).
    pub async fn shutdown(&self) {
        if let Err(e) = self.broker.send(ShutdownBroker).await {
            log::warn!("broker shutdown: {e}");
        }
    }
}
