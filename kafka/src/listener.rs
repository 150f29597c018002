//! The Kafka listener: binds its address, registers the advertised endpoint with the
//! engine (so Metadata names it), and accepts connections — at most
//! `max.connections` at once; a connection past that is closed as it arrives, and
//! the refusal logged.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use troupe_actors::metadata::Endpoint;
use troupe_actors::requests::{metadata, Engine};

use crate::connection;
use crate::ListenerConfig;

/// A bound listener: where it listens and what it advertises.
#[derive(Debug, Clone)]
pub struct KafkaListener {
    pub bound: SocketAddr,
    pub advertised: Endpoint,
}

/// Binds, registers the advertised endpoint, and serves connections on the current
/// runtime until it ends. Fails only if the address cannot be bound.
pub async fn start(engine: Engine, config: ListenerConfig) -> std::io::Result<KafkaListener> {
    let socket = TcpListener::bind(&config.bind).await?;
    let bound = socket.local_addr()?;
    let advertised = Endpoint {
        listener: config.listener_name.clone(),
        host: config
            .advertised_host
            .clone()
            .unwrap_or_else(|| bound.ip().to_string()),
        port: config.advertised_port.unwrap_or(bound.port()),
    };
    if let Err(e) = metadata::register_listeners(&engine, vec![advertised.clone()]).await {
        log::warn!("the Kafka listener's endpoint is not registered: {e}");
    }
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    actix::spawn(accept(socket, engine, config, slots));
    Ok(KafkaListener { bound, advertised })
}

async fn accept(
    socket: TcpListener,
    engine: Engine,
    config: Arc<ListenerConfig>,
    slots: Arc<Semaphore>,
) {
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: back off rather than spin.
                log::warn!("kafka listener: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            log::warn!(
                "kafka listener: refusing {peer}: max.connections = {} reached",
                config.max_connections
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (engine, config) = (engine.clone(), config.clone());
        actix::spawn(async move {
            connection::serve(stream, peer, engine, config).await;
            drop(slot);
        });
    }
}
