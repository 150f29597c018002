//! `troupe serve`: starts the actor system (the broker and its partitions, each
//! recovering its log), then the Kafka listener (if `listeners` has one) and the HTTP
//! layer on the configured listener. On SIGINT or
//! SIGTERM the HTTP server stops accepting, finishes in-flight requests (up to
//! `shutdown.timeout.ms`), and every partition is closed cleanly so the next start
//! skips recovery.

use std::time::Duration;

use actix_web::middleware::{from_fn, NormalizePath};
use actix_web::{web, App, HttpServer};
use metrics_exporter_prometheus::PrometheusBuilder;
use troupe_actors::broker::GetClusterInfo;
use troupe_actors::clock::Clock;
use troupe_actors::node::NodeStart;
use troupe_web::AppState;

use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start the broker: {0}")]
    Broker(#[from] troupe_actors::BrokerError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("the broker actor is not answering: {0}")]
    Mailbox(#[from] actix::MailboxError),
    #[error("{0}")]
    Unsupported(String),
    #[error("TLS: {0}")]
    Tls(String),
}

pub async fn run(settings: Settings) -> Result<(), ServeError> {
    log::info!(
        "starting troupe {} (node {}, data in {})",
        env!("CARGO_PKG_VERSION"),
        settings.broker.node_id,
        settings.broker.log_dir.display()
    );
    for (key, value) in &settings.values {
        log::debug!("config {key} = {value}");
    }
    // Made before anything starts, so a bad key or certificate file stops the start.
    // HTTP/1.1 only on the HTTP listener: WebSocket upgrades are HTTP/1.1's.
    let http_tls = match settings.http_tls {
        true => Some(tls_config(&settings, &[b"http/1.1"])?),
        false => None,
    };
    let kafka_tls = match settings.kafka.iter().any(|k| k.tls_wanted()) {
        true => Some(tls_config(&settings, &[])?),
        false => None,
    };
    // TLS to the other brokers and voters, when their listeners are SSL.
    let mut settings = settings;
    let single = settings
        .broker
        .cluster
        .is_single_node(settings.broker.node_id);
    let inter_broker_tls = !single
        && settings.kafka.iter().any(|k| {
            k.listener_name == settings.broker.cluster.inter_broker_listener_name && k.tls_wanted()
        });
    if inter_broker_tls || (settings.controller_tls && !single) {
        let client =
            crate::tls::client_config(&settings.tls).map_err(|e| ServeError::Tls(e.to_string()))?;
        let peer = troupe_actors::peer_client::PeerTls(client);
        let cluster = &mut settings.broker.cluster;
        cluster.inter_broker_tls = inter_broker_tls.then(|| peer.clone());
        cluster.controller_tls = settings.controller_tls.then_some(peer);
    }
    let controller_tls = match settings.controller_tls {
        true => Some(tls_config(&settings, &[])?),
        false => None,
    };
    let settings = settings;
    let cluster_config = &settings.broker.cluster;
    if !cluster_config.roles.broker && single {
        return Err(ServeError::Unsupported(
            "process.roles=controller on a node that is the whole quorum would serve nobody: a controller-only node needs brokers (controller.quorum.voters naming the others)".into(),
        ));
    }
    if cluster_config.roles.broker && !single {
        check_broker_principal(&settings)?;
    }
    let starting = NodeStart::begin(settings.broker.clone(), Clock::system()).await?;
    if !cluster_config.roles.broker {
        return serve_controller_only(&settings, starting).await;
    }
    let controller_server = match (&settings.controller_listen, single) {
        (Some(listen), false) => Some(serve_controller_listener(
            listen,
            &starting,
            controller_tls.clone(),
        )?),
        (Some(listen), true) => {
            log::info!(
                "the CONTROLLER listener ({listen}) is not opened: this node is the whole quorum"
            );
            None
        }
        (None, _) => None,
    };
    let mut node = starting.finish().await?;
    // Who may do what.
    node.engine.security = std::sync::Arc::new(troupe_actors::requests::SecurityPolicy {
        authentication: settings.http_auth != troupe_web::auth::HttpAuth::None
            || settings.kafka.iter().any(|k| k.security.uses_sasl())
            || settings.tls.client_auth == crate::tls::ClientAuth::Required,
        authorizer: settings.authorizer,
        acl_config: troupe_actors::auth::acl::AuthorizerConfig {
            super_users: settings.super_users.clone(),
            allow_if_no_acl: settings.allow_if_no_acl,
        },
    });
    if settings.authorizer {
        log::info!(
            "authorizer: every request is checked against the ACLs (super.users: {:?}; allow.everyone.if.no.acl.found={})",
            settings.super_users,
            settings.allow_if_no_acl
        );
    }
    if !settings.add_scram.is_empty() {
        troupe_actors::requests::users::bootstrap(&node.engine, &settings.add_scram)
            .await
            .map_err(|e| ServeError::Unsupported(format!("--add-scram: {e}")))?;
        log::info!(
            "--add-scram: {} credential(s) created where the user did not exist",
            settings.add_scram.len()
        );
    }
    let cluster = node.engine.broker.send(GetClusterInfo).await?;
    let metrics = match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            log::warn!("metrics disabled: {e}");
            None
        }
    };
    for mut config in settings.kafka.clone() {
        if config.tls_wanted() {
            config.tls = kafka_tls.clone();
        }
        let bind = config.bind.clone();
        let security = config.security;
        let kafka = troupe_kafka::start(node.engine.clone(), config)
            .await
            .map_err(|source| ServeError::Bind { addr: bind, source })?;
        if !kafka.bound.ip().is_loopback() && !security.uses_sasl() {
            log::warn!(
                "!!! Kafka listener {} on {}, beyond this machine, with NO AUTHENTICATION ({}): \
                 anyone who can reach it can read, write and delete every topic. Bind a \
                 loopback address or make it SASL_PLAINTEXT / SASL_SSL \
                 (listener.security.protocol.map).",
                kafka.advertised.listener,
                kafka.bound,
                security.name()
            );
        }
        // Tests and scripts read this line to learn the port when asked for port 0.
        log::info!(
            "listening on kafka://{} (advertised as {}://{}:{})",
            kafka.bound,
            kafka.advertised.listener,
            kafka.advertised.host,
            kafka.advertised.port
        );
    }
    // Bound before the state is made, so a listener on port 0 advertises the port
    // it got.
    let addr = format!("{}:{}", settings.listen_host, settings.listen_port);
    let listener = std::net::TcpListener::bind(&addr).map_err(|source| ServeError::Bind {
        addr: addr.clone(),
        source,
    })?;
    let advertised_port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(settings.listen_port);
    let mut browser = settings.browser.clone();
    browser.exposed = settings.http_auth == troupe_web::auth::HttpAuth::None
        && listener
            .local_addr()
            .map(|a| !a.ip().is_loopback())
            .unwrap_or(true);
    if browser.exposed {
        log::warn!(
            "!!! listening on {addr}, beyond this machine, with NO AUTHENTICATION: anyone who \
             can reach this address can read, write and delete every topic. Bind a loopback \
             address (--listen 127.0.0.1:PORT) or set authentication.method=BASIC."
        );
    }
    let browser = web::Data::new(browser);
    let http_auth = web::Data::new(settings.http_auth);
    let sessions = web::Data::new(troupe_web::auth::Sessions::default());
    // Other nodes' HTTP listeners (where v2 consumer requests are forwarded) speak
    // https when this one does: their certificates are checked against
    // ssl.truststore.location, or against the public web roots without one.
    let forward_tls = match (
        settings.http_tls && !single,
        settings.tls.truststore.is_some(),
    ) {
        (true, true) => Some(troupe_actors::peer_client::PeerTls(
            crate::tls::client_config(&settings.tls).map_err(|e| ServeError::Tls(e.to_string()))?,
        )),
        _ => None,
    };
    let forwarder = troupe_web::forwarding::Forwarder::new(
        troupe_actors::peer_client::http_agent(forward_tls.as_ref(), 4),
        settings.http_tls,
    );
    let state = AppState {
        engine: node.engine.clone(),
        cluster_id: cluster.cluster_id.clone(),
        node_id: cluster.node_id.get(),
        advertised_host: settings.listen_host.clone(),
        advertised_port,
        limits: settings.web,
        metrics,
        consumer_request_timeout_ms: settings.broker.consumers.request_timeout_ms,
        started_at_ms: node.engine.clock.now_ms(),
        ws: std::sync::Arc::new(troupe_web::WsHub::new(settings.websocket.clone())),
        forwarder,
    };
    let ws_hub = state.ws.clone();
    troupe_web::memory::tune_allocator();
    troupe_web::memory::start_trimmer();
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(browser.clone())
            .app_data(http_auth.clone())
            .app_data(sessions.clone())
            .app_data(web::PathConfig::default().error_handler(troupe_web::path_error))
            .app_data(web::QueryConfig::default().error_handler(troupe_web::query_error))
            // Innermost first: authentication, browser safety, v2 errors typed (refusals included),
            // metrics (so refusals are counted), trailing slashes trimmed before
            // anything routes (Jersey matches `…/offsets/` as `…/offsets`).
            .wrap(from_fn(troupe_web::auth::authenticate))
            .wrap(from_fn(troupe_web::browser_safety::enforce))
            .wrap(from_fn(troupe_web::v2::typed_errors))
            .wrap(from_fn(troupe_web::body_timeout::limit))
            .wrap(from_fn(troupe_web::metrics::track))
            .wrap(NormalizePath::trim())
            .configure(troupe_web::configure)
            .default_service(web::to(troupe_web::default_service))
    })
    .on_connect(troupe_web::ws::note_connection)
    .shutdown_timeout(settings.shutdown_timeout_ms.div_ceil(1000));
    let server = if settings.http_workers > 0 {
        server.workers(settings.http_workers)
    } else {
        server
    };
    let server = match &http_tls {
        Some(tls) => server.listen_rustls_0_23(listener, (**tls).clone()),
        None => server.listen(listener),
    }
    .map_err(|source| ServeError::Bind {
        addr: addr.clone(),
        source,
    })?;
    let scheme = if settings.http_tls { "https" } else { "http" };
    // Other nodes reach this one's v2 consumer instances at its HTTP endpoint.
    let http_endpoint = troupe_actors::metadata::Endpoint {
        listener: troupe_web::HTTP_LISTENER.to_string(),
        host: settings.listen_host.clone(),
        port: advertised_port,
    };
    if let Err(e) =
        troupe_actors::requests::metadata::register_listeners(&node.engine, vec![http_endpoint])
            .await
    {
        log::warn!("registering the HTTP listener: {e}");
    }
    for bound in server.addrs() {
        // Tests and scripts read this line to learn the port when asked for port 0.
        log::info!(
            "listening on {scheme}://{bound} (cluster {})",
            cluster.cluster_id
        );
    }
    // Our own signal handling: stop HTTP first, then close the partitions, while the
    // arbiters that run them are still alive.
    let server = server.disable_signals().run();
    let handle = server.handle();
    let mut running = actix_web::rt::spawn(server);
    let result = tokio::select! {
        finished = &mut running => finished.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string()))),
        signal = shutdown_signal() => {
            log::info!("{signal} received; stopping");
            // WebSocket clients are told (1001) before the server stops accepting.
            ws_hub.begin_shutdown();
            handle.stop(true).await;
            running.await.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        }
    };
    log::info!("HTTP server stopped; closing partitions");
    let closing = node.shutdown();
    let closing = async move {
        closing.await;
        if let Some(server) = controller_server {
            server.stop(false).await;
        }
    };
    if actix_web::rt::time::timeout(Duration::from_secs(60), closing)
        .await
        .is_err()
    {
        log::warn!("partitions did not close within 60 s");
    }
    log::info!("broker stopped");
    result.map_err(ServeError::Http)
}

/// A controller-only node (`process.roles=controller`): a voter of the metadata
/// quorum, the active controller when it leads, and nothing else — no broker, no
/// client listeners — until SIGINT or SIGTERM.
async fn serve_controller_only(settings: &Settings, starting: NodeStart) -> Result<(), ServeError> {
    let listen = settings.controller_listen.as_deref().ok_or_else(|| {
        ServeError::Unsupported("a controller-only node needs a CONTROLLER:// listener".into())
    })?;
    let controller_tls = match settings.controller_tls {
        true => Some(tls_config(settings, &[])?),
        false => None,
    };
    let server = serve_controller_listener(listen, &starting, controller_tls)?;
    log::info!(
        "node {} is a controller only: no broker, no client listeners",
        settings.broker.node_id
    );
    let signal = shutdown_signal().await;
    log::info!("{signal} received; stopping");
    starting.quorum().shutdown().await;
    server.stop(false).await;
    log::info!("controller stopped");
    Ok(())
}

/// Opens the controller listener: the quorum's Raft RPCs and the brokers' requests
/// to the active controller. Runs until the node has stopped its quorum member.
fn serve_controller_listener(
    listen: &str,
    starting: &NodeStart,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> Result<actix_web::dev::ServerHandle, ServeError> {
    let listener = std::net::TcpListener::bind(listen).map_err(|source| ServeError::Bind {
        addr: listen.to_string(),
        source,
    })?;
    let (quorum, channel) = (starting.quorum().clone(), starting.controller().clone());
    let server = HttpServer::new(move || {
        App::new()
            .configure(|cfg| troupe_web::controller_listener::configure(cfg, quorum.clone()))
            .configure(|cfg| {
                troupe_web::controller_listener::configure_decisions(cfg, channel.clone())
            })
            .default_service(web::to(troupe_web::default_service))
    })
    .workers(2)
    .shutdown_timeout(1)
    .disable_signals();
    let over = if tls.is_some() { " (SSL)" } else { "" };
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, (*tls).clone()),
        None => server.listen(listener),
    }
    .map_err(|source| ServeError::Bind {
        addr: listen.to_string(),
        source,
    })?;
    for bound in server.addrs() {
        log::info!("listening on controller://{bound}{over}");
    }
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(handle)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, naming it.
async fn shutdown_signal() -> &'static str {
    use actix_web::rt::signal;
    let terminate = async {
        match signal::unix::signal(signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                log::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = signal::ctrl_c() => "SIGINT",
        _ = terminate => "SIGTERM",
    }
}

/// The TLS listeners' server config, from the `ssl.*` keys, offering `alpn`.
fn tls_config(
    settings: &Settings,
    alpn: &[&[u8]],
) -> Result<std::sync::Arc<rustls::ServerConfig>, ServeError> {
    crate::tls::server_config(&settings.tls, alpn).map_err(|e| ServeError::Tls(e.to_string()))
}

/// With an authorizer on a multi-node cluster, the brokers reach each other as a
/// principal the authorizer must let through: Kafka's rule, the brokers are super
/// users. Their principal on the inter-broker listener is its client certificate's
/// subject when that listener is SSL and asks for certificates, else
/// `User:ANONYMOUS`; a start where it is not one of `super.users` is refused (its
/// replication and forwarded requests would all be denied).
fn check_broker_principal(settings: &Settings) -> Result<(), ServeError> {
    if !settings.authorizer {
        return Ok(());
    }
    let name = &settings.broker.cluster.inter_broker_listener_name;
    let tls = settings
        .kafka
        .iter()
        .any(|k| &k.listener_name == name && k.tls_wanted());
    let subject = match tls {
        true => crate::tls::keystore_subject(&settings.tls)
            .map_err(|e| ServeError::Tls(e.to_string()))?,
        false => None,
    };
    let principal = troupe_actors::auth::principal(
        subject.as_deref().unwrap_or(troupe_actors::auth::ANONYMOUS),
    );
    if settings.super_users.contains(&principal) {
        log::info!("the brokers reach each other on {name} as {principal} (one of super.users)");
        return Ok(());
    }
    Err(ServeError::Unsupported(format!(
        "authorizer.class.name is set, and the brokers reach each other on the inter-broker listener {name} as {principal}, which is not one of super.users ({}): add it (Kafka's brokers are super users; everyone who reaches that listener as {principal} then is one), or make {name} an SSL listener with ssl.client.auth=required and put the brokers' certificate subject in super.users",
        settings.super_users.join(";")
    )))
}
