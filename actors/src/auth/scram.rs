//! SCRAM (RFC 5802, RFC 7677) as Kafka uses it: the credential a user's password
//! becomes (salt, iterations, `StoredKey`, `ServerKey` — Kafka's
//! `UserScramCredentialRecord`; the password itself is never kept), checking a
//! password against one, and the server side of a SCRAM-SHA-256/512 exchange.
//!
//! ```text
//! SaltedPassword = Hi(password, salt, iterations)       PBKDF2 with HMAC-H
//! ClientKey      = HMAC(SaltedPassword, "Client Key")
//! StoredKey      = H(ClientKey)
//! ServerKey      = HMAC(SaltedPassword, "Server Key")
//! AuthMessage    = client-first-bare "," server-first "," client-final-without-proof
//! ClientProof    = ClientKey XOR HMAC(StoredKey, AuthMessage)
//! ServerSignature = HMAC(ServerKey, AuthMessage)
//! ```

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's bounds on a credential's iterations (`ScramMechanism`): fewer is refused as
/// weak, more as a way to make the broker work.
pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 16384;

/// Kafka's SCRAM mechanisms, by their SASL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism of a SASL name (`SCRAM-SHA-256`), in any case.
    pub fn parse(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Kafka's number for it (DescribeUserScramCredentials, the metadata record).
    pub fn kafka_type(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn of_kafka_type(t: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.kafka_type() == t)
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes a key of any length: `new_from_slice` cannot fail here.
        match self {
            ScramMechanism::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            ScramMechanism::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this mechanism's HMAC.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the broker keeps of a password (Kafka's `ScramCredential`). Serialized with
/// its byte strings in base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

/// The keys are not secrets, but they stay out of logs all the same.
impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential of `password` with a fresh random salt.
    pub fn new(
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<ScramCredential, String> {
        check_iterations(iterations)?;
        if password.is_empty() {
            return Err("the password is empty".into());
        }
        let salt = random_bytes(32)?;
        Ok(ScramCredential::from_salted(
            mechanism,
            &mechanism.salted_password(password.as_bytes(), &salt, iterations),
            salt,
            iterations,
        ))
    }

    /// The credential from a salted password computed elsewhere (Kafka's
    /// AlterUserScramCredentials sends the salt and the salted password).
    pub fn from_salted(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// Whether `password` is the one this credential was made from.
    pub fn matches(&self, mechanism: ScramMechanism, password: &str) -> bool {
        let salted = mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        constant_time_eq(&mechanism.hash(&client_key), &self.stored_key)
    }
}

pub fn check_iterations(iterations: u32) -> Result<(), String> {
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(format!(
            "iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, not {iterations}"
        ));
    }
    Ok(())
}

pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(bytes)
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) mod base64_bytes {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Why an exchange failed. The client hears only that authentication failed (the
/// reason is logged), so it cannot tell an unknown user from a wrong password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramFailure(pub String);

/// The server's side of one SCRAM exchange: the client's first message, then its
/// final one.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

enum State {
    Initial,
    /// The server-first message was sent; `credential` is `None` for a user that
    /// does not exist (the exchange goes on with a made-up salt and fails at the end,
    /// as RFC 5802 suggests, so the user's existence is not told).
    FirstSent {
        user: String,
        gs2_header: String,
        nonce: String,
        client_first_bare: String,
        server_first: String,
        credential: Option<ScramCredential>,
    },
    Done,
}

/// What a step of the exchange produced.
pub enum ScramStep {
    /// Send this to the client and wait for its next message.
    Continue(Vec<u8>),
    /// Authenticated as this user; send this last message.
    Done { user: String, message: Vec<u8> },
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::Initial,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Takes the client's next message; `lookup` finds a user's credential for this
    /// mechanism.
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<ScramStep, ScramFailure> {
        let fail = |why: &str| ScramFailure(why.to_string());
        let text = std::str::from_utf8(message).map_err(|_| fail("a message that is not UTF-8"))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Initial => {
                let (gs2_header, bare) = split_gs2_header(text)?;
                let mut attributes = attributes(bare)?;
                let user = attributes
                    .take('n')
                    .ok_or_else(|| fail("no user name (n=)"))?;
                let user = decode_sasl_name(&user)?;
                let client_nonce = attributes.take('r').ok_or_else(|| fail("no nonce (r=)"))?;
                if client_nonce.is_empty() || !client_nonce.chars().all(is_printable) {
                    return Err(fail("an invalid nonce"));
                }
                if attributes.extension("tokenauth") == Some("true") {
                    return Err(fail("delegation tokens are not supported"));
                }
                let credential = lookup(&user);
                let (salt, iterations) = match &credential {
                    Some(c) => (c.salt.clone(), c.iterations),
                    // As long as a real salt (32 bytes), whatever the hash.
                    None => {
                        let mut salt = self.mechanism.hmac(&fake_salt_key(), user.as_bytes());
                        salt.truncate(32);
                        (salt, MIN_ITERATIONS)
                    }
                };
                let server_nonce = B64.encode(random_bytes(24).map_err(|e| fail(&e))?);
                let nonce = format!("{client_nonce}{server_nonce}");
                let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
                self.state = State::FirstSent {
                    user,
                    gs2_header: gs2_header.to_string(),
                    nonce,
                    client_first_bare: bare.to_string(),
                    server_first: server_first.clone(),
                    credential,
                };
                Ok(ScramStep::Continue(server_first.into_bytes()))
            }
            State::FirstSent {
                user,
                gs2_header,
                nonce,
                client_first_bare,
                server_first,
                credential,
            } => {
                let (without_proof, proof) = text
                    .rsplit_once(",p=")
                    .ok_or_else(|| fail("no proof (p=)"))?;
                let mut attributes = attributes(without_proof)?;
                let binding = attributes
                    .take('c')
                    .ok_or_else(|| fail("no channel binding (c=)"))?;
                if B64.decode(binding).ok().as_deref() != Some(gs2_header.as_bytes()) {
                    return Err(fail("the channel binding is not the first message's"));
                }
                // Kafka's check (ScramSaslServer): the nonce ends with the one the
                // server sent. librdkafka 2.0 puts its own nonce before it again.
                if !attributes
                    .take('r')
                    .is_some_and(|r| r.ends_with(nonce.as_str()))
                {
                    return Err(fail("the nonce is not the one the server sent"));
                }
                let proof = B64
                    .decode(proof)
                    .map_err(|_| fail("a proof not in base64"))?;
                let credential = credential
                    .ok_or_else(|| fail(&format!("no user '{user}' with this mechanism")))?;
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let signature = self
                    .mechanism
                    .hmac(&credential.stored_key, auth_message.as_bytes());
                if proof.len() != signature.len() {
                    return Err(fail(&format!("wrong password for '{user}'")));
                }
                let client_key: Vec<u8> =
                    proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
                if !constant_time_eq(&self.mechanism.hash(&client_key), &credential.stored_key) {
                    return Err(fail(&format!("wrong password for '{user}'")));
                }
                let server_signature = self
                    .mechanism
                    .hmac(&credential.server_key, auth_message.as_bytes());
                Ok(ScramStep::Done {
                    user,
                    message: format!("v={}", B64.encode(server_signature)).into_bytes(),
                })
            }
            State::Done => Err(fail("the exchange is over")),
        }
    }
}

/// A key for made-up salts, the same for the process's life: an unknown user is
/// offered the same salt each time, as a real one would be.
fn fake_salt_key() -> Vec<u8> {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| random_bytes(32).unwrap_or_else(|_| b"troupe".to_vec()))
        .clone()
}

fn is_printable(c: char) -> bool {
    ('\x21'..='\x7e').contains(&c) && c != ','
}

/// `n,,n=user,r=…` → (`n,,`, `n=user,r=…`). Channel binding (`p=`) is refused: the
/// broker offers no `-PLUS` mechanism.
fn split_gs2_header(text: &str) -> Result<(&str, &str), ScramFailure> {
    let fail = |why: &str| ScramFailure(why.to_string());
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().unwrap_or_default();
    let authzid = parts.next().ok_or_else(|| fail("no GS2 header"))?;
    let bare = parts.next().ok_or_else(|| fail("no GS2 header"))?;
    if flag != "n" && flag != "y" {
        return Err(fail("channel binding is not supported"));
    }
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err(fail("an invalid authorization id"));
    }
    let header_len = flag.len() + authzid.len() + 2;
    Ok((&text[..header_len], bare))
}

/// A message's `k=value` attributes, in order.
struct Attributes<'a>(Vec<(&'a str, &'a str)>);

fn attributes(text: &str) -> Result<Attributes<'_>, ScramFailure> {
    text.split(',')
        .map(|part| {
            part.split_once('=')
                .ok_or_else(|| ScramFailure(format!("'{part}' is not an attribute")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Attributes)
}

impl Attributes<'_> {
    fn take(&mut self, key: char) -> Option<String> {
        let at = self
            .0
            .iter()
            .position(|(k, _)| k.len() == 1 && k.starts_with(key))?;
        Some(self.0.remove(at).1.to_string())
    }

    fn extension(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

/// RFC 5802's saslname: `=2C` is `,` and `=3D` is `=`; any other `=` is invalid.
fn decode_sasl_name(name: &str) -> Result<String, ScramFailure> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramFailure("an invalid user name".into())),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramFailure("an empty user name".into()));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The client's side, as a Kafka client computes it (for the tests here and the
    /// listener's).
    pub(crate) fn client_final(
        mechanism: ScramMechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let mut attrs = attributes(server_first).unwrap();
        let nonce = attrs.take('r').unwrap();
        let salt = B64.decode(attrs.take('s').unwrap()).unwrap();
        let iterations: u32 = attrs.take('i').unwrap().parse().unwrap();
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        let stored_key = mechanism.hash(&client_key);
        let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = mechanism.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = mechanism.hmac(&salted, b"Server Key");
        let expected = mechanism.hmac(&server_key, auth_message.as_bytes());
        (format!("{without_proof},p={}", B64.encode(proof)), expected)
    }

    fn exchange(
        mechanism: ScramMechanism,
        stored: &ScramCredential,
        user: &str,
        password: &str,
    ) -> Result<ScramStep, ScramFailure> {
        let mut server = ScramServer::new(mechanism);
        let bare = format!("n={user},r=clientnonce123");
        let first = server.step(format!("n,,{bare}").as_bytes(), |u| {
            (u == "alice").then(|| stored.clone())
        })?;
        let ScramStep::Continue(server_first) = first else {
            panic!("the first step finished the exchange");
        };
        let server_first = String::from_utf8(server_first).unwrap();
        assert!(server_first.starts_with("r=clientnonce123"));
        let (last, expected) = client_final(mechanism, password, &bare, &server_first);
        let step = server.step(last.as_bytes(), |_| None)?;
        if let ScramStep::Done { message, .. } = &step {
            assert_eq!(message, &format!("v={}", B64.encode(expected)).into_bytes());
        }
        Ok(step)
    }

    #[test]
    fn a_scram_exchange_authenticates_the_right_password_only() {
        for mechanism in ScramMechanism::ALL {
            let stored = ScramCredential::new(mechanism, "s3cret", 4096).unwrap();
            match exchange(mechanism, &stored, "alice", "s3cret") {
                Ok(ScramStep::Done { user, .. }) => assert_eq!(user, "alice"),
                _ => panic!("{mechanism}: the right password was refused"),
            }
            assert!(exchange(mechanism, &stored, "alice", "wrong").is_err());
            // An unknown user gets a salt too, and fails only at the end.
            let unknown = exchange(mechanism, &stored, "mallory", "s3cret");
            assert!(matches!(unknown, Err(ScramFailure(m)) if m.contains("no user")));
        }
    }

    /// RFC 7677's test vector: user "user", password "pencil", salt and nonces as
    /// given; the proof and server signature must come out as the RFC says.
    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let m = ScramMechanism::Sha256;
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let credential = ScramCredential::from_salted(m, &salted, salt, 4096);
        let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{bare},{server_first},{without_proof}");
        let client_key = m.hmac(&salted, b"Client Key");
        let signature = m.hmac(&credential.stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_signature = m.hmac(&credential.server_key, auth.as_bytes());
        assert_eq!(
            B64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert!(credential.matches(m, "pencil"));
        assert!(!credential.matches(m, "pencil2"));
    }

    #[test]
    fn malformed_messages_are_refused_and_names_are_decoded() {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert!(server.step(b"p=tls-unique,,n=a,r=x", |_| None).is_err());
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert!(server.step(b"n,,r=x", |_| None).is_err());
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert!(server.step(&[0xff, 0xfe], |_| None).is_err());
        assert_eq!(decode_sasl_name("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(decode_sasl_name("a=4").is_err());
        assert!(ScramCredential::new(ScramMechanism::Sha256, "p", 100).is_err());
        assert!(ScramCredential::new(ScramMechanism::Sha256, "", 4096).is_err());
        let credential = ScramCredential::new(ScramMechanism::Sha512, "p", 4096).unwrap();
        assert!(!format!("{credential:?}").contains("key"));
        let json = serde_json::to_string(&credential).unwrap();
        let back: ScramCredential = serde_json::from_str(&json).unwrap();
        assert_eq!(back, credential);
    }
}
