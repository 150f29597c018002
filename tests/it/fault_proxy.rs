//! A fault-injecting TCP proxy for the cluster tests (`../shared/FAULTS.md`): every
//! node reaches another node's CONTROLLER and Kafka listeners through one, so the
//! test can cut a node off from the other brokers while clients still reach it.
//!
//! A proxy stands in front of one node's listener. It reads the first request of
//! each connection to learn who is calling — a controller RPC names its node in the
//! `troupe-node-id` header, a broker's Kafka request in its client id
//! (`troupe-broker/<cluster>/<node>`); anything else is a client — and forwards the
//! connection. While [`Faults::isolate`] names a node, every connection between that
//! node and another broker is blackholed: held open with nothing forwarded (as a
//! network partition looks to TCP), and closed once healed. While
//! [`Faults::slow_down`] names a node, what its Kafka connections with other brokers
//! carry (replication, forwarded requests) is held back by a delay each way. Clients
//! pass always.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The faults in force, shared by every proxy of a cluster.
#[derive(Default)]
pub(crate) struct Faults {
    /// The node cut off from the other brokers (0: none).
    isolated: AtomicUsize,
    /// The node whose Kafka traffic with other brokers is delayed (0: none), and by
    /// how many milliseconds each way.
    slow: AtomicUsize,
    delay_ms: AtomicU64,
    /// Set when the test ends: every proxy thread stops.
    stopped: AtomicBool,
}

impl Faults {
    pub(crate) fn isolate(&self, node: usize) {
        self.isolated.store(node, Ordering::SeqCst);
    }

    pub(crate) fn heal(&self) {
        self.isolated.store(0, Ordering::SeqCst);
        self.slow.store(0, Ordering::SeqCst);
    }

    /// Delays `node`'s Kafka traffic with the other brokers by `delay` each way.
    pub(crate) fn slow_down(&self, node: usize, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
        self.slow.store(node, Ordering::SeqCst);
    }

    /// The delay on traffic from `source` to `destination`, if any.
    fn delay(&self, source: usize, destination: usize) -> Option<Duration> {
        let slow = self.slow.load(Ordering::SeqCst);
        (slow != 0 && source != 0 && (source == slow || destination == slow))
            .then(|| Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)))
    }

    /// Whether traffic from `source` (0: a client) to `destination` is cut.
    fn cut(&self, source: usize, destination: usize) -> bool {
        let isolated = self.isolated.load(Ordering::SeqCst);
        isolated != 0 && source != 0 && (source == isolated || destination == isolated)
    }
}

/// What a proxy's listener speaks, so it can tell who calls.
#[derive(Clone, Copy)]
pub(crate) enum Protocol {
    /// The CONTROLLER listener: HTTP with a `troupe-node-id` header.
    Http,
    /// A Kafka listener: frames whose header carries the client id.
    Kafka,
}

/// One proxy, in front of node `destination`'s listener.
pub(crate) struct FaultProxy {
    pub(crate) port: u16,
    target: Arc<Mutex<String>>,
}

impl FaultProxy {
    pub(crate) fn start(
        protocol: Protocol,
        destination: usize,
        faults: Arc<Faults>,
        target: &str,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a proxy port");
        let port = listener.local_addr().expect("its address").port();
        let target = Arc::new(Mutex::new(target.to_string()));
        let to = target.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if faults.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let (faults, to) = (faults.clone(), to.clone());
                std::thread::spawn(move || relay(protocol, destination, faults, &to, client));
            }
        });
        FaultProxy { port, target }
    }

    /// Where the node now listens (a restarted node's Kafka port changes).
    pub(crate) fn set_target(&self, target: &str) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = target.to_string();
    }
}

/// Stops every proxy thread of `faults` (each ends at its next connection or read).
pub(crate) fn stop(faults: &Faults) {
    faults.stopped.store(true, Ordering::SeqCst);
}

const POLL: Duration = Duration::from_millis(100);

fn relay(
    protocol: Protocol,
    destination: usize,
    faults: Arc<Faults>,
    target: &Mutex<String>,
    mut client: TcpStream,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(preamble) = read_preamble(protocol, &mut client) else {
        return;
    };
    let source = match protocol {
        Protocol::Http => http_source(&preamble),
        Protocol::Kafka => kafka_source(&preamble),
    };
    if hold_while_cut(&faults, source, destination) {
        return;
    }
    let address = target.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Ok(mut server) = TcpStream::connect(&address) else {
        return;
    };
    if server.write_all(&preamble).is_err() {
        return;
    }
    let (Ok(client_in), Ok(server_in)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let delays = matches!(protocol, Protocol::Kafka);
    let up = std::thread::spawn({
        let faults = faults.clone();
        move || copy(&faults, (source, destination, delays), client_in, server)
    });
    copy(&faults, (source, destination, delays), server_in, client);
    let _ = up.join();
}

/// Copies `from` to `to` until either closes; while the connection is cut, holds it
/// (nothing forwarded), then closes both once healed.
fn copy(
    faults: &Faults,
    (source, destination, delays): (usize, usize, bool),
    mut from: TcpStream,
    mut to: TcpStream,
) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if faults.stopped.load(Ordering::SeqCst) {
            break;
        }
        if faults.cut(source, destination) {
            hold_while_cut(faults, source, destination);
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if faults.cut(source, destination) {
                    hold_while_cut(faults, source, destination);
                    break;
                }
                if let Some(delay) = faults.delay(source, destination).filter(|_| delays) {
                    std::thread::sleep(delay);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Waits while the connection is cut; whether it was.
fn hold_while_cut(faults: &Faults, source: usize, destination: usize) -> bool {
    let mut was = false;
    while faults.cut(source, destination) && !faults.stopped.load(Ordering::SeqCst) {
        was = true;
        std::thread::sleep(POLL);
    }
    was
}

/// The first request's opening bytes: HTTP headers to their blank line, or a Kafka
/// frame's length and header.
fn read_preamble(protocol: Protocol, client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut preamble = Vec::new();
    let mut byte = [0u8; 1];
    match protocol {
        Protocol::Http => {
            while !preamble.ends_with(b"\r\n\r\n") && preamble.len() < 16 * 1024 {
                client.read_exact(&mut byte).ok()?;
                preamble.push(byte[0]);
            }
        }
        Protocol::Kafka => {
            // length (4), api key (2), version (2), correlation id (4), client id
            // length (2): then the client id.
            let mut head = [0u8; 14];
            client.read_exact(&mut head).ok()?;
            preamble.extend_from_slice(&head);
            let len = i16::from_be_bytes([head[12], head[13]]).max(0) as usize;
            let mut id = vec![0u8; len.min(1024)];
            client.read_exact(&mut id).ok()?;
            preamble.extend_from_slice(&id);
        }
    }
    Some(preamble)
}

fn http_source(preamble: &[u8]) -> usize {
    String::from_utf8_lossy(preamble)
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("troupe-node-id")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0)
}

fn kafka_source(preamble: &[u8]) -> usize {
    let id = String::from_utf8_lossy(preamble.get(14..).unwrap_or_default()).to_string();
    id.strip_prefix("troupe-broker/")
        .and_then(|rest| rest.rsplit('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
