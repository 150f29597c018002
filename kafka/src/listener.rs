//! The Kafka listener: binds its address, registers the advertised endpoint with the
//! engine (so Metadata names it), and accepts connections — at most
//! `max.connections` at once; a connection past that is closed as it arrives, and
//! the refusal logged.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use troupe_actors::auth::certificate_subject;
use troupe_actors::metadata::Endpoint;
use troupe_actors::requests::{metadata, Engine};

use crate::connection;
use crate::ListenerConfig;

/// The read buffer under a TLS connection.
const TLS_READ_BUFFER: usize = 64 * 1024;

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
            match config.tls.clone() {
                None => connection::serve(stream.into_split(), peer, None, engine, config).await,
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    // rustls reads the socket 4 KiB at a time: a read buffer under it
                    // takes a produce's records in large reads (writes pass through).
                    let stream = tokio::io::BufReader::with_capacity(TLS_READ_BUFFER, stream);
                    match tokio::time::timeout(config.request_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            // Mutual TLS: the client certificate's subject is the
                            // principal (SASL, on a SASL_SSL listener, replaces it).
                            let subject = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|certs| certs.first())
                                .and_then(|cert| certificate_subject(cert));
                            connection::serve(
                                tokio::io::split(stream),
                                peer,
                                subject,
                                engine,
                                config,
                            )
                            .await
                        }
                        Ok(Err(e)) => log::warn!("kafka: TLS handshake with {peer} failed: {e}"),
                        Err(_) => log::warn!(
                            "kafka: TLS handshake with {peer} did not finish within {} ms",
                            config.request_timeout.as_millis()
                        ),
                    }
                }
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use troupe_actors::broker_config::BrokerConfig;
    use troupe_actors::node::Node;
    use troupe_actors::peer_client::{broker_client_id, PeerClient};
    use troupe_actors::requests::topics::{self, NewTopic};
    use troupe_actors::requests::RequestContext;
    use troupe_actors::storage::{BatchRef, Record, RecordBatch, TimestampType};

    use crate::ListenerConfig;

    /// A broker's client (what forwarding and replication use) against a real
    /// listener: Metadata, then a Produce and a Fetch pipelined on one connection.
    #[actix_rt::test]
    async fn a_peer_client_produces_and_fetches_through_a_real_listener() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            log_dir: dir.path().to_path_buf(),
            cleaner_enable: false,
            ..BrokerConfig::default()
        };
        let node = Node::start(config).await.unwrap();
        let context = RequestContext::kafka(None, None);
        let topic = NewTopic {
            name: "t".into(),
            partitions: Some(1),
            ..Default::default()
        };
        topics::create(&node.engine, &context, topic).await.unwrap();
        let listener = super::start(
            node.engine.clone(),
            ListenerConfig {
                bind: "127.0.0.1:0".into(),
                ..ListenerConfig::default()
            },
        )
        .await
        .unwrap();
        let client = PeerClient::new(
            &listener.bound.to_string(),
            &broker_client_id(&node.engine.image().cluster_id, 2),
            4,
            Duration::from_secs(10),
            None,
        );
        let metadata = client.call(&MetadataRequest::default(), 12).await.unwrap();
        assert_eq!(metadata.brokers.len(), 1);
        let record = Record {
            timestamp_ms: 1,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: vec![],
        };
        let batch = RecordBatch::encode(&[record], TimestampType::CreateTime).unwrap();
        let name = || TopicName(StrBytes::from_static_str("t"));
        let produce = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(batch.as_bytes().to_vec())))])]);
        let fetch = FetchRequest::default()
            .with_max_wait_ms(5000)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]);
        // Pipelined on one connection: answered in order.
        let (produced, fetched) = futures::join!(client.call(&produce, 9), client.call(&fetch, 11));
        let (error_code, base_offset) = produce_partition(&produced.unwrap());
        assert_eq!((error_code, base_offset), (0, 0));
        let fetched = fetched.unwrap();
        let partition = &fetched.responses[0].partitions[0];
        assert_eq!(partition.high_watermark, 1);
        let records = partition.records.clone().unwrap();
        let stored = BatchRef::parse(&records).unwrap();
        assert_eq!((stored.base_offset(), stored.records_count()), (0, 1));
        assert_eq!(stored.computed_crc(), stored.stored_crc());

        // A broker of another cluster is refused (the connection closed), and the
        // listener goes on serving.
        let stranger = PeerClient::new(
            &listener.bound.to_string(),
            &broker_client_id("another-cluster", 2),
            4,
            Duration::from_secs(10),
            None,
        );
        let refused = stranger.call(&MetadataRequest::default(), 12).await;
        assert!(refused.is_err(), "{refused:?}");
        assert!(client.call(&MetadataRequest::default(), 12).await.is_ok());
    }

    fn produce_partition(r: &kafka_protocol::messages::ProduceResponse) -> (i16, i64) {
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }
}
