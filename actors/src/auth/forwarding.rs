//! Requests one broker forwards to another over HTTP (a v2 consumer instance lives on
//! the node that made it; a request for it reaching another node travels there)
//! carry who made them: the forwarding node has authenticated the caller, and the
//! node that serves the request takes its word for it only when the claim is signed
//! with the cluster's forwarding key.
//!
//! The key is 32 random bytes the active controller makes once, when it bootstraps
//! the metadata log (or finds a log without one), committed as a `forwarding_key`
//! record: every node has it in its image, no client API shows it, and it is never
//! logged. A signature is HMAC-SHA256 over the whole claim — forwarding node, time,
//! method, path and query, user, client address and a hash of the body — so none of
//! them can be changed, and the serving node refuses claims older than
//! [`MAX_CLAIM_AGE`].

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::scram::{constant_time_eq, random_bytes};

/// How far a claim's time may be from the serving node's clock.
pub const MAX_CLAIM_AGE: Duration = Duration::from_secs(120);
const KEY_BYTES: usize = 32;

/// The cluster's forwarding key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardingKey(#[serde(with = "super::scram::base64_bytes")] Vec<u8>);

/// Never printed.
impl fmt::Debug for ForwardingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForwardingKey(…)")
    }
}

/// What a forwarded request says of itself.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The forwarding node.
    pub from: i32,
    /// When it was forwarded, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub method: &'a str,
    /// Path and query.
    pub target: &'a str,
    /// The authenticated caller, if authentication is on.
    pub user: Option<&'a str>,
    /// The caller's address, as the forwarding node saw it.
    pub client: Option<IpAddr>,
    pub body: &'a [u8],
}

impl ForwardingKey {
    /// A new random key.
    pub fn generate() -> Result<ForwardingKey, String> {
        random_bytes(KEY_BYTES).map(ForwardingKey)
    }

    fn mac(&self, claim: &Claim<'_>) -> Option<Vec<u8>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).ok()?;
        let address = claim.client.map(|a| a.to_string()).unwrap_or_default();
        let body = Sha256::digest(claim.body);
        let fields: [&[u8]; 7] = [
            &claim.from.to_be_bytes(),
            &claim.at_ms.to_be_bytes(),
            claim.method.as_bytes(),
            claim.target.as_bytes(),
            claim.user.unwrap_or_default().as_bytes(),
            address.as_bytes(),
            &body,
        ];
        // Each field with its length, so no two claims sign the same bytes.
        for field in fields {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        // A claim with a user and one without differ even for the empty name.
        mac.update(&[u8::from(claim.user.is_some())]);
        Some(mac.finalize().into_bytes().to_vec())
    }

    /// The claim's signature (base64, for a header).
    pub fn sign(&self, claim: &Claim<'_>) -> String {
        let mac = self.mac(claim).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(mac)
    }

    /// Whether `signature` is this key's for `claim`, made within
    /// [`MAX_CLAIM_AGE`] of `now_ms`.
    pub fn verify(&self, claim: &Claim<'_>, signature: &str, now_ms: u64) -> bool {
        if now_ms.abs_diff(claim.at_ms) > MAX_CLAIM_AGE.as_millis() as u64 {
            return false;
        }
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return false;
        };
        self.mac(claim)
            .is_some_and(|expected| constant_time_eq(&expected, &given))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(user: Option<&str>) -> Claim<'_> {
        Claim {
            from: 2,
            at_ms: 1_000_000,
            method: "POST",
            target: "/consumers/g/instances/i/subscription",
            user,
            client: "10.0.0.7".parse().ok(),
            body: br#"{"topics":["a"]}"#,
        }
    }

    #[test]
    fn a_signed_claim_verifies_and_any_change_to_it_does_not() {
        let key = ForwardingKey::generate().expect("randomness");
        let signed = claim(Some("alice"));
        let signature = key.sign(&signed);
        assert!(key.verify(&signed, &signature, 1_000_500));
        let changed = [
            Claim {
                user: Some("mallory"),
                ..signed
            },
            Claim {
                user: None,
                ..signed
            },
            Claim {
                user: Some(""),
                ..signed
            },
            Claim { from: 3, ..signed },
            Claim {
                at_ms: 1_000_001,
                ..signed
            },
            Claim {
                method: "DELETE",
                ..signed
            },
            Claim {
                target: "/consumers/g/instances/j/subscription",
                ..signed
            },
            Claim {
                client: "10.0.0.8".parse().ok(),
                ..signed
            },
            Claim {
                body: br#"{"topics":["b"]}"#,
                ..signed
            },
        ];
        for c in changed {
            assert!(!key.verify(&c, &signature, 1_000_500), "{c:?}");
        }
        // Another key's signature, a stale claim and garbage are refused.
        let other = ForwardingKey::generate().expect("randomness");
        assert!(!other.verify(&signed, &signature, 1_000_500));
        let late = 1_000_000 + MAX_CLAIM_AGE.as_millis() as u64 + 1;
        assert!(!key.verify(&signed, &signature, late));
        assert!(!key.verify(&signed, "not base64!", 1_000_500));
        assert!(!key.verify(&signed, "", 1_000_500));
    }

    #[test]
    fn the_key_is_never_printed_and_survives_serialization() {
        let key = ForwardingKey::generate().expect("randomness");
        assert_eq!(format!("{key:?}"), "ForwardingKey(…)");
        let json = serde_json::to_string(&key).expect("json");
        let back: ForwardingKey = serde_json::from_str(&json).expect("json");
        assert_eq!(back, key);
        assert_ne!(ForwardingKey::generate().expect("randomness"), key);
    }
}
