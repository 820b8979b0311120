//! The API key format (SPEC §3): `pf_<env>_` + 16 base62 key id chars + 43 base62 secret chars
//! + 6 base62 CRC32 checksum. The checksum lets us reject typos and garbage without any I/O.

use rand::distributions::{Alphanumeric, DistString};
use std::fmt;

const KEY_ID_RANDOM_LEN: usize = 16;
const SECRET_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Parsers look at no more than this many characters.
pub const MAX_PRESENTED_KEY_LEN: usize = 255;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The deployment environment baked into every key's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEnv {
    Live,
    Test,
    Dev,
}

impl KeyEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEnv::Live => "live",
            KeyEnv::Test => "test",
            KeyEnv::Dev => "dev",
        }
    }

    pub fn parse(s: &str) -> Option<KeyEnv> {
        match s {
            "live" => Some(KeyEnv::Live),
            "test" => Some(KeyEnv::Test),
            "dev" => Some(KeyEnv::Dev),
            _ => None,
        }
    }
}

/// A full API key in plaintext. Shown to the user exactly once; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlaintextKey(String);

impl PlaintextKey {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The public key id: everything before the secret.
    pub fn key_id(&self) -> &str {
        let prefix_len = self.0.len() - SECRET_LEN - CHECKSUM_LEN;
        &self.0[..prefix_len]
    }
}

impl fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaintextKey({}…)", &self.0[..self.0.len().min(24)])
    }
}

/// Creates a brand-new key: fresh key id, fresh secret.
/// The key id `s` begins with (`pf_<env>_` and 16 base62 characters), if it begins with one.
pub fn leading_key_id(s: &str) -> Option<&str> {
    let env = s.strip_prefix("pf_")?.split('_').next()?;
    KeyEnv::parse(env)?;
    let len = "pf_".len() + env.len() + 1 + KEY_ID_RANDOM_LEN;
    let key_id = s.get(..len)?;
    let random = &key_id[len - KEY_ID_RANDOM_LEN..];
    random
        .bytes()
        .all(|b| b.is_ascii_alphanumeric())
        .then_some(key_id)
}

pub fn generate(env: KeyEnv) -> PlaintextKey {
    let mut rng = rand::thread_rng();
    let key_id = format!(
        "pf_{}_{}",
        env.as_str(),
        Alphanumeric.sample_string(&mut rng, KEY_ID_RANDOM_LEN)
    );
    with_new_secret(&key_id)
}

/// A new secret under an existing key id (used by roll, so the key keeps its identity).
pub fn with_new_secret(key_id: &str) -> PlaintextKey {
    let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), SECRET_LEN);
    let body = format!("{key_id}{secret}");
    let checksum = encode_checksum(crc32fast::hash(body.as_bytes()));
    PlaintextKey(body + &checksum)
}

/// Why a presented string is not a well-formed key. None of these needs the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    Malformed,
    BadChecksum,
}

/// A presented key that is well formed and whose checksum matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub env: KeyEnv,
    /// `pf_<env>_` plus the 16 random characters: the public, indexed part.
    pub key_id: &'a str,
    pub full: &'a str,
}

pub fn parse(presented: &str) -> Result<ParsedKey<'_>, FormatError> {
    if presented.len() > MAX_PRESENTED_KEY_LEN {
        return Err(FormatError::Malformed);
    }
    let rest = presented
        .strip_prefix("pf_")
        .ok_or(FormatError::Malformed)?;
    let (env, rest) = rest.split_once('_').ok_or(FormatError::Malformed)?;
    let env = KeyEnv::parse(env).ok_or(FormatError::Malformed)?;
    if rest.len() != KEY_ID_RANDOM_LEN + SECRET_LEN + CHECKSUM_LEN
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(FormatError::Malformed);
    }
    let prefix_len = presented.len() - rest.len();
    let checksum_at = presented.len() - CHECKSUM_LEN;
    let expected = encode_checksum(crc32fast::hash(&presented.as_bytes()[..checksum_at]));
    if expected.as_bytes() != &presented.as_bytes()[checksum_at..] {
        return Err(FormatError::BadChecksum);
    }
    Ok(ParsedKey {
        env,
        key_id: &presented[..prefix_len + KEY_ID_RANDOM_LEN],
        full: presented,
    })
}

/// Whether a string looks like a key id (`pf_<env>_` + 16 base62), for CLI arguments.
pub fn is_key_id(s: &str) -> bool {
    s.strip_prefix("pf_")
        .and_then(|rest| rest.split_once('_'))
        .is_some_and(|(env, tail)| {
            KeyEnv::parse(env).is_some()
                && tail.len() == KEY_ID_RANDOM_LEN
                && tail.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// CRC32 in six fixed-width base62 digits (62^6 > 2^32).
fn encode_checksum(mut value: u32) -> String {
    let mut digits = [b'0'; CHECKSUM_LEN];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_match_the_scanner_regex_shape_and_parse() {
        for env in [KeyEnv::Live, KeyEnv::Test, KeyEnv::Dev] {
            let key = generate(env);
            let s = key.expose();
            let tail = s.strip_prefix(&format!("pf_{}_", env.as_str())).unwrap();
            assert_eq!(tail.len(), 65);
            assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric()));
            let parsed = parse(s).unwrap();
            assert_eq!(parsed.env, env);
            assert_eq!(
                parsed.key_id.len(),
                8 + 16 - usize::from(env == KeyEnv::Dev)
            );
            assert!(is_key_id(parsed.key_id));
        }
    }

    #[test]
    fn live_key_id_is_the_first_24_characters() {
        let key = generate(KeyEnv::Live);
        assert_eq!(parse(key.expose()).unwrap().key_id, &key.expose()[..24]);
        assert_eq!(key.key_id(), &key.expose()[..24]);
    }

    #[test]
    fn any_changed_character_fails_the_checksum() {
        let key = generate(KeyEnv::Live);
        let s = key.expose();
        for i in 8..s.len() {
            let mut bytes = s.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(parse(&changed), Err(FormatError::BadChecksum), "index {i}");
        }
    }

    #[test]
    fn malformed_inputs_are_rejected() {
        let good = generate(KeyEnv::Live);
        let s = good.expose();
        for bad in [
            "",
            "pf_live_",
            "sk_live_abc",
            &s[..s.len() - 1],
            &format!("{s}x"),
            &s.replacen("live", "prod", 1),
            &format!("{}-{}", &s[..30], &s[31..]),
            &"x".repeat(300),
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse(&s.replacen("pf_", "pf-", 1)),
            Err(FormatError::Malformed)
        ));
    }

    #[test]
    fn roll_keeps_the_key_id_and_changes_the_secret() {
        let key = generate(KeyEnv::Test);
        let key_id = parse(key.expose()).unwrap().key_id.to_owned();
        let rolled = with_new_secret(&key_id);
        assert_ne!(rolled, key);
        assert_eq!(parse(rolled.expose()).unwrap().key_id, key_id);
    }

    #[test]
    fn checksum_is_fixed_width() {
        assert_eq!(encode_checksum(0), "000000");
        assert_eq!(encode_checksum(61), "00000z");
        assert_eq!(encode_checksum(u32::MAX).len(), 6);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = generate(KeyEnv::Live);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.expose()[24..]));
    }
}
