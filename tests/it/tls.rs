//! TLS on the listeners (issue 16): a test CA made at test time (rcgen), a broker
//! whose HTTP listener is `https://` and which has a Kafka `SSL` listener beside
//! `PLAINTEXT`; curl, kcat and confluent-kafka as the clients, each trusting only the
//! test CA; then mutual TLS, where a client certificate from that CA is required.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use serde_json::Value;

use crate::broker::TestBroker;

/// The test PKI's files.
struct Pki {
    _dir: tempfile::TempDir,
    /// The CA certificate clients and the broker trust.
    ca: PathBuf,
    /// The broker's key store: its key and certificate (for localhost, 127.0.0.1).
    keystore: PathBuf,
    /// A client certificate and key from the test CA.
    client: (PathBuf, PathBuf),
    /// A client certificate and key from another CA.
    stranger: (PathBuf, PathBuf),
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).expect("a CA"), key)
}

fn leaf(
    names: &[&str],
    common_name: &str,
    usages: &[ExtendedKeyUsagePurpose],
    (issuer, issuer_key): &(Certificate, KeyPair),
) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().expect("a key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = usages.to_vec();
    (
        params.signed_by(&key, issuer, issuer_key).expect("signed"),
        key,
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("a temp dir");
    let authority = ca("Troupe test CA");
    let other = ca("Someone else's CA");
    let (server, server_key) = leaf(
        &["localhost", "127.0.0.1"],
        "troupe-broker",
        // Brokers show it to each other as clients too.
        &[
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        &authority,
    );
    let (client, client_key) = leaf(
        &[],
        "alice",
        &[ExtendedKeyUsagePurpose::ClientAuth],
        &authority,
    );
    let (stranger, stranger_key) = leaf(
        &[],
        "mallory",
        &[ExtendedKeyUsagePurpose::ClientAuth],
        &other,
    );
    let d = dir.path();
    Pki {
        ca: write(d, "ca.pem", &authority.0.pem()),
        keystore: write(
            d,
            "server.pem",
            &format!("{}{}", server_key.serialize_pem(), server.pem()),
        ),
        client: (
            write(d, "client.pem", &client.pem()),
            write(d, "client.key", &client_key.serialize_pem()),
        ),
        stranger: (
            write(d, "stranger.pem", &stranger.pem()),
            write(d, "stranger.key", &stranger_key.serialize_pem()),
        ),
        _dir: dir,
    }
}

/// A broker with `https://` and Kafka `PLAINTEXT` and `SSL` listeners (all port 0),
/// and `extra` overrides.
fn tls_broker(dir: &Path, pki: &Pki, extra: &[&str]) -> (TestBroker, u16) {
    let keystore = format!("ssl.keystore.location={}", pki.keystore.display());
    let mut overrides = vec![
        "listeners=https://127.0.0.1:0,PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        keystore.as_str(),
    ];
    overrides.extend_from_slice(extra);
    let broker = TestBroker::start_with(dir, &overrides);
    let ssl_port = broker
        .logged("(advertised as SSL://")
        .iter()
        .find_map(|line| {
            let address = line.split("listening on kafka://").nth(1)?;
            address
                .split_whitespace()
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .expect("the SSL listener's port is logged");
    (broker, ssl_port)
}

fn https(broker: &TestBroker, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", broker.port)
}

/// curl with `args`: its output (the body, then the status code on its own line).
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-s", "-S", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs")
}

/// The status and JSON body of a curl that must have connected.
fn answered(out: &Output) -> (u16, Value) {
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, status) = text.rsplit_once('\n').expect("a status line");
    (
        status.trim().parse().expect("a status"),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Creates `name` (one partition) over HTTPS; answers the topics URL.
fn create_topic_https(b: &TestBroker, ca: &str, name: &str) -> String {
    let (status, clusters) = answered(&curl(&["--cacert", ca, &https(b, "/v3/clusters")]));
    assert_eq!(status, 200, "{clusters}");
    let cluster = clusters["data"][0]["cluster_id"]
        .as_str()
        .expect("a cluster id");
    let topics = https(b, &format!("/v3/clusters/{cluster}/topics"));
    let (status, body) = answered(&curl(&[
        "--cacert",
        ca,
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!(r#"{{"topic_name":"{name}","partitions_count":1}}"#),
        &topics,
    ]));
    assert_eq!(status, 201, "{body}");
    topics
}

/// Writes `value` to partition 0 of `topic` over HTTPS: the status and the report.
fn produce_https(ca: &str, topics: &str, topic: &str, value: &str) -> (u16, Value) {
    let body = serde_json::json!({"partition_id": 0, "value": {"type": "JSON", "data": value}});
    answered(&curl(&[
        "--cacert",
        ca,
        "-H",
        "Content-Type: application/json",
        "-d",
        &body.to_string(),
        &format!("{topics}/{topic}/records"),
    ]))
}

#[test]
fn https_serves_rest_and_the_dashboard_to_clients_that_trust_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let (b, _) = tls_broker(dir.path(), &pki, &[]);
    let ca = path_arg(&pki.ca);
    // Create, produce and read back over HTTPS.
    let topics = create_topic_https(&b, ca, "sealed");
    let (status, body) = produce_https(ca, &topics, "sealed", "over tls");
    assert_eq!(
        (status, &body["error_code"]),
        (200, &Value::from(200)),
        "{body}"
    );
    let (status, body) = answered(&curl(&[
        "--cacert",
        ca,
        "-H",
        "Accept: application/vnd.kafka.json.v2+json",
        &https(&b, "/topics/sealed/partitions/0/records?offset=0"),
    ]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["value"], "over tls", "{body}");
    // The dashboard, over the same listener.
    let page = curl(&["--cacert", ca, "-H", "Accept: text/html", &https(&b, "/")]);
    assert!(page.status.success());
    assert!(String::from_utf8_lossy(&page.stdout).contains("<html"));

    // A client that does not trust the CA is refused by its own TLS check; a plain
    // HTTP request to the TLS port gets no HTTP answer; the broker serves on.
    let untrusting = curl(&[&https(&b, "/v3/clusters")]);
    assert_eq!(untrusting.status.code(), Some(60), "{untrusting:?}");
    let plain = curl(&[&format!("http://127.0.0.1:{}/v3/clusters", b.port)]);
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(!text.ends_with("200"), "plain HTTP was served: {text}");
    let (status, _) = answered(&curl(&["--cacert", ca, &https(&b, "/v3/clusters")]));
    assert_eq!(status, 200);
}

/// kcat with `args` against the SSL listener: its output, or why it failed.
fn kcat_ssl(port: u16, tls: &[String], args: &[&str], input: &str) -> Result<String, String> {
    let bootstrap = format!("127.0.0.1:{port}");
    let mut all: Vec<&str> = vec!["-m", "5"];
    for t in tls {
        all.extend(["-X", t.as_str()]);
    }
    all.extend_from_slice(args);
    let out = crate::kafka::kcat_output(&bootstrap, &all, input);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn kafka_clients_produce_and_consume_over_the_ssl_listener() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let (b, ssl_port) = tls_broker(dir.path(), &pki, &[]);
    let tls = vec![
        "security.protocol=ssl".to_string(),
        format!("ssl.ca.location={}", pki.ca.display()),
    ];
    // Metadata over SSL names the broker's SSL endpoint.
    let metadata: Value =
        serde_json::from_str(&kcat_ssl(ssl_port, &tls, &["-L", "-J"], "").expect("metadata"))
            .expect("JSON");
    assert_eq!(
        metadata["brokers"][0]["name"],
        format!("127.0.0.1:{ssl_port}"),
        "{metadata}"
    );
    create_topic_https(&b, path_arg(&pki.ca), "sealed");
    kcat_ssl(
        ssl_port,
        &tls,
        &["-P", "-t", "sealed", "-p", "0"],
        "a\nb\nc\n",
    )
    .expect("produce");
    let read = kcat_ssl(
        ssl_port,
        &tls,
        &[
            "-C",
            "-t",
            "sealed",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%s\n",
        ],
        "",
    )
    .expect("consume");
    assert_eq!(read.lines().collect::<Vec<_>>(), ["a", "b", "c"]);

    // confluent-kafka (librdkafka) through the same listener, reading what kcat wrote
    // and writing more.
    let script = format!(
        r#"
import json
from confluent_kafka import Consumer, Producer
tls = {{"bootstrap.servers": "127.0.0.1:{ssl_port}", "security.protocol": "SSL", "ssl.ca.location": {ca:?}}}
p = Producer(tls)
for v in ["d", "e"]:
    p.produce("sealed", v.encode(), partition=0)
left = p.flush(10)
c = Consumer(dict(tls, **{{"group.id": "tls-readers", "auto.offset.reset": "earliest"}}))
c.subscribe(["sealed"])
got = []
for _ in range(100):
    m = c.poll(0.5)
    if m is not None and m.error() is None:
        got.append(m.value().decode())
    if len(got) >= 5:
        break
c.close()
print(json.dumps({{"unflushed": left, "got": got}}))
"#,
        ca = pki.ca.display().to_string()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["unflushed"], 0, "{report}");
    assert_eq!(report["got"], serde_json::json!(["a", "b", "c", "d", "e"]));

    // Plaintext to the SSL port gets nowhere; the PLAINTEXT listener still serves.
    assert!(kcat_ssl(ssl_port, &[], &["-L"], "").is_err());
    let plain = crate::kafka::kcat(&b, &["-L", "-J"], "");
    assert!(plain.contains("sealed"), "{plain}");
}

#[test]
fn with_client_auth_required_only_clients_with_a_certificate_from_the_trusted_ca_connect() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let truststore = format!("ssl.truststore.location={}", pki.ca.display());
    let (b, ssl_port) = tls_broker(
        dir.path(),
        &pki,
        &["ssl.client.auth=required", truststore.as_str()],
    );
    let ca = path_arg(&pki.ca);
    let url = https(&b, "/v3/clusters");
    let (cert, key) = (path_arg(&pki.client.0), path_arg(&pki.client.1));
    let (status, _) = answered(&curl(&["--cacert", ca, "--cert", cert, "--key", key, &url]));
    assert_eq!(status, 200);
    // The certificate's subject is who asks (Kafka's SSL principal).
    let (status, me) = answered(&curl(&[
        "--cacert",
        ca,
        "--cert",
        cert,
        "--key",
        key,
        &https(&b, "/dashboard/status"),
    ]));
    assert_eq!(
        (status, &me["user"]),
        (200, &Value::from("CN=alice")),
        "{me}"
    );
    let without = curl(&["--cacert", ca, &url]);
    assert!(
        !String::from_utf8_lossy(&without.stdout).ends_with("200"),
        "served without a client certificate: {without:?}"
    );
    let (s_cert, s_key) = (path_arg(&pki.stranger.0), path_arg(&pki.stranger.1));
    let stranger = curl(&["--cacert", ca, "--cert", s_cert, "--key", s_key, &url]);
    assert!(
        !String::from_utf8_lossy(&stranger.stdout).ends_with("200"),
        "served a certificate from another CA: {stranger:?}"
    );

    let tls = vec![
        "security.protocol=ssl".to_string(),
        format!("ssl.ca.location={ca}"),
    ];
    let with_cert: Vec<String> = tls
        .iter()
        .cloned()
        .chain([
            format!("ssl.certificate.location={cert}"),
            format!("ssl.key.location={key}"),
        ])
        .collect();
    assert!(kcat_ssl(ssl_port, &with_cert, &["-L"], "").is_ok());
    assert!(
        b.logs_soon("authenticated as User:CN=alice by its client certificate"),
        "the Kafka connection's principal is the certificate's subject"
    );
    assert!(kcat_ssl(ssl_port, &tls, &["-L"], "").is_err());
}

#[test]
fn a_websocket_subscriber_streams_records_over_wss() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tungstenite::client::IntoClientRequest;
    use tungstenite::Message;

    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let (b, _) = tls_broker(dir.path(), &pki, &[]);
    let ca = path_arg(&pki.ca);
    let topics = create_topic_https(&b, ca, "streamed");
    let (status, body) = produce_https(ca, &topics, "streamed", "sealed and streamed");
    assert_eq!(status, 200, "{body}");

    // A rustls client trusting only the test CA, under tungstenite.
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&pki.ca).unwrap();
    for cert in pem_certificates(&pem) {
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let tls = rustls::StreamOwned::new(connection, tcp);
    let request = format!("wss://127.0.0.1:{}/ws", b.port)
        .into_client_request()
        .unwrap();
    let (mut ws, _) = tungstenite::client(request, tls).expect("the WSS upgrade succeeds");
    ws.send(Message::text(
        r#"{"type":"subscribe","sub":"s","topic":"streamed","from":"beginning"}"#,
    ))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut values = Vec::new();
    while values.is_empty() && Instant::now() < deadline {
        let Message::Text(text) = ws.read().expect("a frame") else {
            continue;
        };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
        assert_ne!(frame["type"], "error", "{frame}");
        if frame["type"] == "records" {
            values.extend(
                frame["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["value"].clone()),
            );
        }
    }
    assert_eq!(values, [Value::from("sealed and streamed")]);
}

/// The certificates of a PEM text.
fn pem_certificates(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}

/// SASL over TLS (`SASL_SSL`): kcat and confluent-kafka authenticate with SCRAM
/// through an encrypted connection; a wrong password or no TLS gets nowhere.
#[test]
fn sasl_ssl_authenticates_scram_clients_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let keystore = format!("ssl.keystore.location={}", pki.keystore.display());
    let args = vec![
        "--data-dir".to_string(),
        dir.path().join("data").display().to_string(),
        "--add-scram".to_string(),
        "SCRAM-SHA-512=[name=alice,password=alice-secret]".to_string(),
    ];
    let b = TestBroker::serve_args(
        dir.path(),
        &args,
        &[
            "listeners=https://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
            &keystore,
        ],
    );
    let port: u16 = b.bootstrap().rsplit(':').next().unwrap().parse().unwrap();
    let sasl = |password: &str| {
        vec![
            "security.protocol=sasl_ssl".to_string(),
            format!("ssl.ca.location={}", pki.ca.display()),
            "sasl.mechanisms=SCRAM-SHA-512".to_string(),
            "sasl.username=alice".to_string(),
            format!("sasl.password={password}"),
        ]
    };
    create_topic_https(&b, path_arg(&pki.ca), "private");
    kcat_ssl(
        port,
        &sasl("alice-secret"),
        &["-P", "-t", "private", "-p", "0"],
        "x\ny\n",
    )
    .expect("produce over SASL_SSL");
    let read = kcat_ssl(
        port,
        &sasl("alice-secret"),
        &[
            "-C",
            "-t",
            "private",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%s\n",
        ],
        "",
    )
    .expect("consume over SASL_SSL");
    assert_eq!(read.lines().collect::<Vec<_>>(), ["x", "y"]);
    let wrong = kcat_ssl(port, &sasl("guess"), &["-L"], "").unwrap_err();
    assert!(wrong.contains("uthentication"), "{wrong}");
    // TLS without SASL, and SASL without TLS, are refused.
    let tls_only = vec![
        "security.protocol=ssl".to_string(),
        format!("ssl.ca.location={}", pki.ca.display()),
    ];
    assert!(kcat_ssl(port, &tls_only, &["-L"], "").is_err());
    assert!(kcat_ssl(port, &[], &["-L"], "").is_err());

    let script = format!(
        r#"
import json
from confluent_kafka import Consumer
conf = {{"bootstrap.servers": "127.0.0.1:{port}", "security.protocol": "SASL_SSL",
        "ssl.ca.location": {ca:?}, "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "alice", "sasl.password": "alice-secret",
        "group.id": "sasl-ssl", "auto.offset.reset": "earliest"}}
c = Consumer(conf)
c.subscribe(["private"])
got = []
for _ in range(100):
    m = c.poll(0.5)
    if m is not None and m.error() is None:
        got.append(m.value().decode())
    if len(got) >= 2:
        break
c.close()
print(json.dumps(got))
"#,
        ca = pki.ca.display().to_string()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(got, serde_json::json!(["x", "y"]));
}

#[test]
fn brokers_and_the_quorum_reach_each_other_over_tls() {
    use crate::cluster::{all_alive, wait_until, TestCluster};
    use std::time::Duration;
    let pki = pki();
    let keystore = format!("ssl.keystore.location={}", path_arg(&pki.keystore));
    let truststore = format!("ssl.truststore.location={}", path_arg(&pki.ca));
    // The brokers' Kafka listener (named PLAINTEXT, the inter-broker one) and the
    // CONTROLLER listener both speak TLS.
    let c = TestCluster::start(&[
        "listener.security.protocol.map=PLAINTEXT:SSL,CONTROLLER:SSL",
        "default.replication.factor=3",
        &keystore,
        &truststore,
    ]);
    wait_until("every broker alive", Duration::from_secs(30), || {
        all_alive(&c, 2)
    });
    for id in 1..=3 {
        assert!(
            !c.node(id).logged("listening on controller://").is_empty()
                && !c.node(id).logged("(SSL)").is_empty(),
            "node {id} serves its controller listener over TLS"
        );
    }
    // A metadata change goes through the quorum (over TLS), and each partition's
    // followers copy it from its leader over the inter-broker listener (TLS too).
    let (status, body) = c.create_topic(1, "sealed", 3);
    assert_eq!(status, 201, "{body}");
    for p in 0..3 {
        let report = c.produce(1, "sealed", p, &format!("v{p}"));
        assert_eq!(report["error_code"], 200, "{report}");
    }
    for p in 0..3 {
        assert_eq!(c.read(3, "sealed", p), vec![(0, format!("v{p}"))]);
    }
    wait_until("every replica in sync", Duration::from_secs(30), || {
        (0..3).all(|p| {
            let (_, body) = crate::broker::get(&c.v3(2, &format!("/topics/sealed/partitions/{p}")));
            body["isr_ids"].as_array().is_some_and(|isr| isr.len() == 3)
        })
    });
    // The controller listener answers no plaintext HTTP.
    let port = c.controller_listener(1);
    let plain = ureq::post(&format!("http://{port}/raft/vote"))
        .timeout(Duration::from_secs(5))
        .send_string("{}");
    assert!(
        !matches!(plain, Ok(_) | Err(ureq::Error::Status(..))),
        "the controller listener answered plaintext HTTP: {plain:?}"
    );
}

/// A curl over HTTPS trusting the test CA, with `extra` arguments (credentials,
/// headers, a method and body): its status and JSON body.
fn https_call(ca: &str, url: &str, extra: &[&str]) -> (u16, Value) {
    let mut args = vec!["--cacert", ca];
    args.extend_from_slice(extra);
    args.push(url);
    answered(&curl(&args))
}

/// v2 consumer requests that reach a node other than their instance's travel there
/// over https, carrying the caller's identity signed with the cluster's forwarding
/// key: a dashboard session opened on one node works for an instance on another,
/// ACLs apply to the caller (not to the forwarding broker), and a forged claim is
/// refused.
#[test]
fn v2_consumer_requests_travel_between_https_nodes_as_their_caller() {
    use crate::cluster::{wait_until, TestCluster};
    use base64::Engine as _;
    use std::time::Duration;
    let pki = pki();
    let ca = path_arg(&pki.ca);
    let keystore = format!("ssl.keystore.location={}", path_arg(&pki.keystore));
    let truststore = format!("ssl.truststore.location={}", path_arg(&pki.ca));
    let c = TestCluster::start_nodes_with_args(
        3,
        &[
            "--add-scram",
            "SCRAM-SHA-256=[name=admin,password=admin-pw]",
        ],
        &[
            "listeners=https://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
            "authentication.method=BASIC",
            "authorizer.class.name=acl",
            // The brokers reach each other on PLAINTEXT as ANONYMOUS, which
            // must be a super user (Kafka's rule); no client is anonymous on HTTP.
            "super.users=User:admin;User:ANONYMOUS",
            &keystore,
            &truststore,
        ],
        &[],
    );
    let url = |node: usize, path: &str| https(c.node(node), path);
    let v3 = |path: &str| url(1, &format!("/v3/clusters/{}{path}", c.cluster_id));
    const ADMIN: &str = "admin:admin-pw";
    const JSON: &str = "Content-Type: application/json";
    const V2: &str = "Content-Type: application/vnd.kafka.v2+json";
    wait_until("three brokers registered", Duration::from_secs(30), || {
        let (status, body) = https_call(ca, &v3("/brokers"), &["-u", ADMIN]);
        status == 200 && body["data"].as_array().is_some_and(|b| b.len() == 3)
    });
    let post = |url: &str, auth: &[&str], content_type: &str, body: &str| {
        let mut args = auth.to_vec();
        args.extend_from_slice(&["-X", "POST", "-H", content_type, "-d", body]);
        https_call(ca, url, &args)
    };
    let (status, body) = post(
        &v3("/topics"),
        &["-u", ADMIN],
        JSON,
        r#"{"topic_name": "private", "partitions_count": 1}"#,
    );
    assert_eq!(status, 201, "{body}");
    for user in ["alice", "bob"] {
        let (status, body) = post(
            &v3("/users"),
            &["-u", ADMIN],
            JSON,
            &format!(r#"{{"user_name": "{user}", "password": "{user}-pw"}}"#),
        );
        assert_eq!(status, 201, "{body}");
    }
    let acl = |kind: &str, name: &str| {
        format!(
            r#"{{"resource_type": "{kind}", "resource_name": "{name}", "pattern_type": "LITERAL",
                "principal": "User:alice", "host": "*", "operation": "READ", "permission": "ALLOW"}}"#
        )
    };
    for (kind, name) in [("TOPIC", "private"), ("GROUP", "g")] {
        let (status, body) = post(&v3("/acls"), &["-u", ADMIN], JSON, &acl(kind, name));
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = post(
        &v3("/topics/private/records"),
        &["-u", ADMIN],
        JSON,
        r#"{"value": {"type": "JSON", "data": "for alice"}}"#,
    );
    assert_eq!(status, 200, "{body}");
    // Alice makes her instance on node 1...
    let (status, body) = post(
        &url(1, "/consumers/g"),
        &["-u", "alice:alice-pw"],
        V2,
        r#"{"name": "a1", "format": "json", "auto.offset.reset": "earliest"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let instance = |node: usize, rest: &str| url(node, &format!("/consumers/g/instances/a1{rest}"));
    // ...then logs in to the dashboard on node 3 and, with that session (which node
    // 1 never saw), subscribes it through node 3.
    let jar = tempfile::NamedTempFile::new().expect("a cookie jar");
    let jar = path_arg(jar.path()).to_string();
    let (status, _) = post(
        &url(3, "/login"),
        &["-c", &jar],
        JSON,
        r#"{"user": "alice", "password": "alice-pw"}"#,
    );
    assert_eq!(status, 204);
    let (status, body) = post(
        &instance(3, "/subscription"),
        &["-b", &jar],
        V2,
        r#"{"topics": ["private"]}"#,
    );
    assert_eq!(status, 204, "{body}");
    let mut values = Vec::new();
    wait_until(
        "alice's record, through node 2",
        Duration::from_secs(20),
        || {
            let (status, records) = https_call(
                ca,
                &instance(2, "/records?timeout=500"),
                &[
                    "-u",
                    "alice:alice-pw",
                    "-H",
                    "Accept: application/vnd.kafka.json.v2+json",
                ],
            );
            assert_eq!(status, 200, "{records}");
            values.extend(
                records
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r["value"].clone()),
            );
            !values.is_empty()
        },
    );
    assert_eq!(values, vec![Value::from("for alice")]);
    // Bob has no ACL on group g: forwarded as bob, node 1 refuses him.
    let (status, body) = https_call(ca, &instance(3, "/subscription"), &["-u", "bob:bob-pw"]);
    assert_eq!(
        (status, body["error_code"].clone()),
        (403, 40301.into()),
        "{body}"
    );
    // A claim not signed with the cluster's key is 401, whoever it names.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        .to_string();
    let admin = base64::engine::general_purpose::STANDARD.encode("admin");
    let forged_signature = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let (status, body) = https_call(
        ca,
        &instance(1, "/subscription"),
        &[
            "-H",
            "troupe-forwarded-by: 3",
            "-H",
            &format!("troupe-forwarded-at: {now}"),
            "-H",
            &format!("troupe-forwarded-user: {admin}"),
            "-H",
            &format!("troupe-forwarded-signature: {forged_signature}"),
        ],
    );
    assert_eq!(
        (status, body["error_code"].clone()),
        (401, 40101.into()),
        "{body}"
    );
    let (status, body) = https_call(
        ca,
        &instance(1, "/subscription"),
        &["-H", "troupe-forwarded-by: 3"],
    );
    assert_eq!(status, 401, "{body}");
    // Alice deletes it through node 2.
    let (status, body) = https_call(
        ca,
        &instance(2, ""),
        &["-u", "alice:alice-pw", "-X", "DELETE"],
    );
    assert_eq!(status, 204, "{body}");
    let (status, _) = https_call(ca, &instance(1, "/subscription"), &["-u", "alice:alice-pw"]);
    assert_eq!(status, 404, "deleted where it lived");
}

/// With an authorizer, the inter-broker listener trusts the brokers only as super
/// users (Kafka's rule): here an SSL listener asking for certificates, the brokers'
/// subject in `super.users`. Replication runs; a client that reaches the same
/// listener with its own certificate is authorized like anywhere else. A node whose
/// brokers would not be super users refuses to start.
#[test]
fn the_inter_broker_listener_trusts_only_the_brokers_principal() {
    use crate::cluster::{all_alive, wait_until, TestCluster};
    use std::time::Duration;
    let pki = pki();
    let keystore = format!("ssl.keystore.location={}", path_arg(&pki.keystore));
    let truststore = format!("ssl.truststore.location={}", path_arg(&pki.ca));
    let c = TestCluster::start(&[
        "listener.security.protocol.map=PLAINTEXT:SSL,CONTROLLER:SSL",
        "ssl.client.auth=required",
        "authorizer.class.name=acl",
        // The brokers' certificate; ANONYMOUS is this test's plain-HTTP admin.
        "super.users=User:CN=troupe-broker;User:ANONYMOUS",
        "default.replication.factor=3",
        &keystore,
        &truststore,
    ]);
    wait_until("every broker alive", Duration::from_secs(30), || {
        all_alive(&c, 2)
    });
    assert!(c
        .node(1)
        .logs_soon("the brokers reach each other on PLAINTEXT as User:CN=troupe-broker"));
    let (status, body) = c.create_topic(1, "guarded", 1);
    assert_eq!(status, 201, "{body}");
    let report = c.produce(1, "guarded", 0, "replicated");
    assert_eq!(report["error_code"], 200, "{report}");
    wait_until("every replica in sync", Duration::from_secs(30), || {
        let (_, body) = crate::broker::get(&c.v3(2, "/topics/guarded/partitions/0"));
        body["isr_ids"].as_array().is_some_and(|isr| isr.len() == 3)
    });
    // Alice's certificate is from the same CA, and gets her nothing on the
    // inter-broker listener without an ACL.
    let ca = path_arg(&pki.ca);
    let alice = vec![
        "security.protocol=ssl".to_string(),
        format!("ssl.ca.location={ca}"),
        format!("ssl.certificate.location={}", path_arg(&pki.client.0)),
        format!("ssl.key.location={}", path_arg(&pki.client.1)),
    ];
    let port = c.node(1).kafka_port;
    let listed = |tls: &[String]| -> Vec<String> {
        let out = kcat_ssl(port, tls, &["-L", "-J"], "").expect("metadata");
        let metadata: Value = serde_json::from_str(&out).expect("JSON");
        metadata["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["topic"].as_str().map(str::to_string))
            .collect()
    };
    assert!(!listed(&alice).contains(&"guarded".to_string()));
    let read = |tls: &[String]| {
        kcat_ssl(
            port,
            tls,
            &[
                "-C",
                "-t",
                "guarded",
                "-p",
                "0",
                "-o",
                "beginning",
                "-e",
                "-q",
            ],
            "",
        )
    };
    assert!(
        !read(&alice).is_ok_and(|out| out.contains("replicated")),
        "alice read without an ACL"
    );
    for op in ["DESCRIBE", "READ"] {
        let acl = serde_json::json!({"resource_type": "TOPIC", "resource_name": "guarded",
            "pattern_type": "LITERAL", "principal": "User:CN=alice", "host": "*",
            "operation": op, "permission": "ALLOW"});
        let (status, body) = crate::broker::post_json(&c.v3(1, "/acls"), &acl);
        assert_eq!(status, 201, "{body}");
    }
    wait_until(
        "alice's ACLs apply on node 1",
        Duration::from_secs(10),
        || listed(&alice).contains(&"guarded".to_string()),
    );
    // The value as produced over REST: a JSON string.
    assert_eq!(read(&alice).expect("alice reads").trim(), "\"replicated\"");

    // The same cluster with the brokers left out of super.users does not start.
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .args(["serve", "--data-dir", path_arg(dir.path())])
        .args(["--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0"])
        .args(["--controller-listen", "127.0.0.1:0"])
        .args(["--override", "node.id=1"])
        .args(["--override", &format!("cluster.id={}", c.cluster_id)])
        .args([
            "--override",
            "controller.quorum.voters=1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3",
        ])
        .args(["--override", "authorizer.class.name=acl"])
        .args(["--override", "super.users=User:admin"])
        .output()
        .expect("troupe runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("as User:ANONYMOUS, which is not one of super.users"),
        "{stderr}"
    );
}
