//! Standard Webhooks v1 (<https://www.standardwebhooks.com/>): secrets `whsec_<base64>`, the
//! signature `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, and a verifier (used by our
//! tests; receivers can use any Standard Webhooks library).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// How far a timestamp may be from now for `verify` to accept it.
pub const TOLERANCE_SECS: i64 = 300;

/// A new endpoint secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `webhook-signature` header value: one `v1,<sig>` per secret, space-separated (two during
/// a rotation's overlap). Secrets that do not parse are skipped.
pub fn sign(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| key(s))
        .filter_map(|k| mac(&k, id, timestamp, body))
        .map(|m| format!("v1,{}", STANDARD.encode(m.finalize().into_bytes())))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the secret is not a whsec_ secret")]
    BadSecret,
    #[error("the timestamp is too old or too new")]
    Timestamp,
    #[error("no signature matches")]
    NoMatch,
}

/// Checks a delivery as a receiver would: the timestamp within the tolerance of `now`, and one
/// of the `v1,` signatures matching (in constant time). Empty or malformed signatures never
/// match.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let key = key(secret).ok_or(VerifyError::BadSecret)?;
    let ts: i64 = timestamp.parse().map_err(|_| VerifyError::Timestamp)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Timestamp);
    }
    for candidate in signatures.split(' ') {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(given) = STANDARD.decode(encoded) else {
            continue;
        };
        if given.is_empty() {
            continue;
        }
        let mac = mac(&key, id, ts, body).ok_or(VerifyError::BadSecret)?;
        if mac.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn matches_the_specification_example() {
        assert_eq!(
            sign(&[SECRET], ID, TS, BODY),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn verifies_and_rejects_tampering() {
        let sig = sign(&[SECRET], ID, TS, BODY);
        assert_eq!(verify(SECRET, ID, "1614265330", &sig, BODY, TS), Ok(()));
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(
            verify(SECRET, ID, "1614265330", &sig, tampered, TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(SECRET, "msg_other", "1614265330", &sig, BODY, TS),
            Err(VerifyError::NoMatch)
        );
        // A changed timestamp breaks the signature; an old one is refused outright.
        assert_eq!(
            verify(SECRET, ID, "1614265331", &sig, BODY, TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(SECRET, ID, "1614265330", &sig, BODY, TS + 301),
            Err(VerifyError::Timestamp)
        );
        for empty in ["v1,", "", "v1", "v2,abc", "v1,!!!"] {
            assert_eq!(
                verify(SECRET, ID, "1614265330", empty, BODY, TS),
                Err(VerifyError::NoMatch),
                "{empty:?}"
            );
        }
    }

    #[test]
    fn rotation_signs_with_both_secrets() {
        let new = new_secret();
        assert!(new.starts_with("whsec_") && key(&new).is_some_and(|k| k.len() == 32));
        let both = sign(&[&new, SECRET], ID, TS, BODY);
        assert_eq!(both.split(' ').count(), 2);
        assert_eq!(verify(SECRET, ID, "1614265330", &both, BODY, TS), Ok(()));
        assert_eq!(verify(&new, ID, "1614265330", &both, BODY, TS), Ok(()));
    }
}
