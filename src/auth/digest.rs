//! Key digests: HMAC-SHA256 under a server-side pepper. A database leak alone does not yield
//! usable keys, and verification costs microseconds (keys are 256-bit random, so no slow hash).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The pepper. `Debug` hides it.
#[derive(Clone)]
pub struct Pepper(Vec<u8>);

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

impl Pepper {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn digest(&self, key: &str) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Constant-time comparison of a presented key against a stored digest.
    pub fn verify(&self, key: &str, stored: &[u8]) -> bool {
        stored.len() == 32 && bool::from(self.digest(key).ct_eq(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_pepper_and_key() {
        let a = Pepper::new("one");
        let b = Pepper::new("two");
        assert_ne!(a.digest("k"), b.digest("k"));
        assert_ne!(a.digest("k"), a.digest("l"));
        assert!(a.verify("k", &a.digest("k")));
        assert!(!a.verify("k", &b.digest("k")));
        assert!(!a.verify("k", &[0u8; 31]));
    }
}
