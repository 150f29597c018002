//! Authentication: who a request comes from. Users and their SCRAM credentials live
//! in the cluster metadata (Kafka's `UserScramCredentialRecord`s, published in every
//! node's image); [`scram`] is RFC 5802 over them; [`SaslServer`] runs one SASL
//! exchange of a Kafka connection (PLAIN or SCRAM-SHA-256/512); [`Authenticator`]
//! checks a user name and password (SASL/PLAIN, HTTP Basic) against the same
//! credentials, remembering recent successes so a REST client's every request does
//! not cost a PBKDF2, and slows down an address whose attempts keep failing.
//!
//! A principal is Kafka's `User:<name>`; a connection that did not authenticate is
//! `User:ANONYMOUS`.

pub mod acl;
pub mod forwarding;
pub mod scram;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use scram::{ScramCredential, ScramMechanism};

/// A user's credentials, one per mechanism it has.
pub type UserCredentials = BTreeMap<ScramMechanism, ScramCredential>;

/// Every user, by name.
pub type Users = BTreeMap<String, UserCredentials>;

/// The user name of a request that did not authenticate (Kafka's).
pub const ANONYMOUS: &str = "ANONYMOUS";

/// Kafka's principal for a user name: `User:alice`.
pub fn principal(user: &str) -> String {
    format!("User:{user}")
}

/// The subject of a TLS client certificate (DER), as Kafka's default SSL principal
/// names it: RFC 4514's form, most specific first (`CN=alice,O=Example`); `None`
/// for bytes that are not a certificate.
pub fn certificate_subject(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let certificate = x509_cert::Certificate::from_der(der).ok()?;
    let subject = certificate.tbs_certificate.subject.to_string();
    (!subject.is_empty()).then_some(subject)
}

/// The SASL mechanisms the Kafka listener can offer (`sasl.enabled.mechanisms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 3] = [
        SaslMechanism::Scram(ScramMechanism::Sha256),
        SaslMechanism::Scram(ScramMechanism::Sha512),
        SaslMechanism::Plain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
        }
    }

    pub fn parse(name: &str) -> Option<SaslMechanism> {
        SaslMechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// A failed authentication. `reason` is for the log; clients hear only that it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    pub reason: String,
}

/// A step of a SASL exchange.
pub enum SaslStep {
    Continue(Vec<u8>),
    Done { user: String, message: Vec<u8> },
}

/// The server's side of one SASL exchange on a Kafka connection.
pub enum SaslServer {
    Plain,
    Scram(Box<scram::ScramServer>),
}

impl SaslServer {
    pub fn new(mechanism: SaslMechanism) -> SaslServer {
        match mechanism {
            SaslMechanism::Plain => SaslServer::Plain,
            SaslMechanism::Scram(m) => SaslServer::Scram(Box::new(scram::ScramServer::new(m))),
        }
    }

    /// Takes the client's next token, checking it against `users` (PLAIN's password
    /// derivation on the blocking pool, as [`Authenticator::check_password_async`]).
    pub async fn step(
        &mut self,
        token: &[u8],
        users: &std::sync::Arc<Users>,
        authenticator: &std::sync::Arc<Authenticator>,
    ) -> Result<SaslStep, AuthFailure> {
        match self {
            SaslServer::Plain => {
                let (user, password) = parse_plain(token)?;
                if authenticator
                    .check_password_async(users.clone(), user.clone(), password)
                    .await
                {
                    Ok(SaslStep::Done {
                        user,
                        message: Vec::new(),
                    })
                } else {
                    Err(AuthFailure {
                        reason: format!("wrong user name or password (user '{user}', PLAIN)"),
                    })
                }
            }
            SaslServer::Scram(server) => {
                let mechanism = server.mechanism();
                let step = server
                    .step(token, |user| {
                        users.get(user).and_then(|c| c.get(&mechanism)).cloned()
                    })
                    .map_err(|f| AuthFailure {
                        reason: format!("{mechanism}: {}", f.0),
                    })?;
                Ok(match step {
                    scram::ScramStep::Continue(m) => SaslStep::Continue(m),
                    scram::ScramStep::Done { user, message } => SaslStep::Done { user, message },
                })
            }
        }
    }
}

/// SASL/PLAIN's one message (RFC 4616): `authzid NUL authcid NUL passwd`. An
/// authorization id other than the user's own is refused, as Kafka does.
fn parse_plain(token: &[u8]) -> Result<(String, String), AuthFailure> {
    let fail = |why: &str| AuthFailure {
        reason: format!("PLAIN: {why}"),
    };
    let text = std::str::from_utf8(token).map_err(|_| fail("a message that is not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(fail("not authzid NUL user NUL password"));
    };
    if user.is_empty() || password.is_empty() {
        return Err(fail("an empty user name or password"));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(fail("an authorization id other than the user's own"));
    }
    Ok((user.to_string(), password.to_string()))
}

/// Checks user names and passwords against the users' SCRAM credentials, and paces
/// addresses whose attempts fail.
pub struct Authenticator {
    /// A key of this process's, so the cache holds no password nor a plain hash of one.
    key: Vec<u8>,
    /// HMAC(key, user NUL password) → the stored key of the credential it matched:
    /// a changed or removed credential no longer matches.
    recent: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// Checked for unknown users, so they take as long as known ones.
    dummy: ScramCredential,
    /// Password derivations running at once.
    checks: tokio::sync::Semaphore,
}

/// Password derivations (PBKDF2) at once: a core's worth each.
pub const CHECKS_AT_ONCE: usize = 2;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// How many successes are remembered before the memory starts over.
const RECENT_MAX: usize = 10_000;
/// The delay after an address's first failure; it doubles with each further one.
pub const FIRST_FAILURE_DELAY: Duration = Duration::from_millis(100);
/// The longest delay.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);
/// An address with no failure for this long starts again from the first delay.
const FAILURE_MEMORY: Duration = Duration::from_secs(300);

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator {
            key: scram::random_bytes(32).unwrap_or_else(|_| b"troupe-auth".to_vec()),
            recent: Mutex::default(),
            failures: Mutex::default(),
            dummy: ScramCredential::from_salted(
                ScramMechanism::Sha512,
                b"no such user",
                b"troupe".to_vec(),
                scram::MIN_ITERATIONS,
            ),
            checks: tokio::sync::Semaphore::new(CHECKS_AT_ONCE),
        }
    }
}

impl Authenticator {
    /// Whether `password` is `user`'s: against its SCRAM-SHA-512 credential if it has
    /// one, else its SCRAM-SHA-256 one.
    pub fn check_password(&self, users: &Users, user: &str, password: &str) -> bool {
        match self.remembered(users, user, password) {
            Some(known) => known,
            None => self.derive_and_check(users, user, password),
        }
    }

    /// As [`Authenticator::check_password`], with the PBKDF2 (thousands of SHA-2
    /// rounds) on the blocking pool, at most [`CHECKS_AT_ONCE`] at a time: a flood of
    /// wrong passwords queues there, never on the threads that serve requests.
    pub async fn check_password_async(
        self: &std::sync::Arc<Self>,
        users: std::sync::Arc<Users>,
        user: String,
        password: String,
    ) -> bool {
        if let Some(known) = self.remembered(&users, &user, &password) {
            return known;
        }
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.derive_and_check(&users, &user, &password))
            .await
            .unwrap_or(false)
    }

    /// `Some(true)` when this password matched the user's current credential lately.
    fn remembered(&self, users: &Users, user: &str, password: &str) -> Option<bool> {
        let (_, credential) = users.get(user).and_then(|c| c.iter().next_back())?;
        let tag = self.tag(user, password);
        let recent = self.recent.lock().ok()?;
        (recent.get(&tag) == Some(&credential.stored_key)).then_some(true)
    }

    fn derive_and_check(&self, users: &Users, user: &str, password: &str) -> bool {
        let Some((mechanism, credential)) = users.get(user).and_then(|c| c.iter().next_back())
        else {
            // An unknown user costs what a known one does: its absence is not told by
            // how fast the answer comes.
            let _ = self.dummy.matches(ScramMechanism::Sha512, password);
            return false;
        };
        let tag = self.tag(user, password);
        if !credential.matches(*mechanism, password) {
            return false;
        }
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= RECENT_MAX {
                recent.clear();
            }
            recent.insert(tag, credential.stored_key.clone());
        }
        true
    }

    fn tag(&self, user: &str, password: &str) -> Vec<u8> {
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(user.as_bytes());
                mac.update(&[0]);
                mac.update(password.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Records a failed attempt from `address` and answers how long to hold the
    /// answer back: 100 ms after the first failure, doubling up to 5 s.
    pub fn failed(&self, address: Option<IpAddr>) -> Duration {
        let Some(address) = address else {
            return FIRST_FAILURE_DELAY;
        };
        let Ok(mut failures) = self.failures.lock() else {
            return MAX_FAILURE_DELAY;
        };
        let now = Instant::now();
        if failures.len() >= RECENT_MAX {
            failures.retain(|_, f| now.duration_since(f.last) < FAILURE_MEMORY);
            if failures.len() >= RECENT_MAX {
                // Addresses past the bound all wait the longest: memory stays bounded.
                return MAX_FAILURE_DELAY;
            }
        }
        let entry = failures.entry(address).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(entry.last) >= FAILURE_MEMORY {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        let doublings = entry.count.saturating_sub(1).min(16);
        (FIRST_FAILURE_DELAY * 2u32.saturating_pow(doublings)).min(MAX_FAILURE_DELAY)
    }

    /// A success is answered at once, but forgets no failure: an attacker holding
    /// one account cannot reset the pace of guesses at another (failures are
    /// forgotten 5 minutes after the last one).
    pub fn succeeded(&self, _address: Option<IpAddr>) {}

    /// What a session of `user` was opened against: its strongest credential's stored
    /// key, so a new password (or the user deleted, or made again) ends the session.
    pub fn fingerprint(users: &Users, user: &str) -> Option<Vec<u8>> {
        users
            .get(user)
            .and_then(|c| c.values().next_back())
            .map(|c| c.stored_key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        let mut users = Users::new();
        let mut alice = UserCredentials::new();
        alice.insert(
            ScramMechanism::Sha256,
            ScramCredential::new(ScramMechanism::Sha256, "pw", 4096).unwrap(),
        );
        users.insert("alice".into(), alice);
        users
    }

    #[actix_rt::test]
    async fn plain_checks_the_password_and_remembers_only_what_still_matches() {
        let auth = std::sync::Arc::new(Authenticator::default());
        let mut users = users();
        let shared = std::sync::Arc::new(users.clone());
        let mut plain = SaslServer::new(SaslMechanism::Plain);
        assert!(matches!(
            plain.step(b"\0alice\0pw", &shared, &auth).await,
            Ok(SaslStep::Done { user, .. }) if user == "alice"
        ));
        assert!(plain.step(b"\0alice\0nope", &shared, &auth).await.is_err());
        assert!(plain.step(b"bob\0alice\0pw", &shared, &auth).await.is_err());
        assert!(plain.step(b"alice\0pw", &shared, &auth).await.is_err());
        assert!(auth.check_password(&users, "alice", "pw"));
        // A new password: the remembered success of the old one no longer counts.
        users.get_mut("alice").unwrap().insert(
            ScramMechanism::Sha256,
            ScramCredential::new(ScramMechanism::Sha256, "new", 4096).unwrap(),
        );
        assert!(!auth.check_password(&users, "alice", "pw"));
        assert!(auth.check_password(&users, "alice", "new"));
        users.remove("alice");
        assert!(!auth.check_password(&users, "alice", "new"));
    }

    #[actix_rt::test]
    async fn the_blocking_check_answers_as_the_direct_one() {
        let auth = std::sync::Arc::new(Authenticator::default());
        let users = std::sync::Arc::new(users());
        let check = |user: &str, password: &str| {
            auth.check_password_async(users.clone(), user.to_string(), password.to_string())
        };
        assert!(check("alice", "pw").await);
        assert!(check("alice", "pw").await, "remembered");
        assert!(!check("alice", "nope").await);
        assert!(!check("nobody", "pw").await);
    }

    #[test]
    fn repeated_failures_from_one_address_wait_longer_each_time() {
        let auth = Authenticator::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let delays: Vec<Duration> = (0..8).map(|_| auth.failed(Some(a))).collect();
        assert_eq!(delays[0], FIRST_FAILURE_DELAY);
        assert_eq!(delays[1], FIRST_FAILURE_DELAY * 2);
        assert_eq!(delays[7], MAX_FAILURE_DELAY);
        assert_eq!(auth.failed(Some(b)), FIRST_FAILURE_DELAY);
        // A success does not reset the pace.
        auth.succeeded(Some(a));
        assert_eq!(auth.failed(Some(a)), MAX_FAILURE_DELAY);
    }
}
