//! Reading the four credential forms and the store header (SPEC §3). Pure header parsing.

use axum::http::{header, HeaderMap};
use base64::Engine;

/// The presented key, from `authorization: ApiKey|Bearer <key>`, Basic (key as user name), or
/// `x-api-key`. `authorization` wins when both are present.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        // Present but not text: still the header that counts, so nothing is read.
        let (scheme, rest) = value.to_str().ok()?.trim().split_once(' ')?;
        let rest = rest.trim();
        return match scheme.to_ascii_lowercase().as_str() {
            "apikey" | "bearer" => Some(rest.to_owned()),
            "basic" => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest)
                    .ok()?;
                let decoded = String::from_utf8(decoded).ok()?;
                let (user, _password) = decoded.split_once(':').unwrap_or((&decoded, ""));
                Some(user.to_owned())
            }
            _ => None,
        };
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// An `authorization` header holding a bare key (`pf_…` with no `ApiKey ` before it): the
/// client forgot the scheme, and is told so.
pub fn bare_key_without_scheme(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .is_some_and(|v| v.starts_with("pf_") && !v.contains(' '))
}

/// An `authorization` header from which no key can be read (an unknown scheme, no value, bad
/// Basic encoding): it still wins over `x-api-key`, and the client is told why nothing was read.
pub fn unreadable_authorization(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) && presented_key(headers).is_none()
}

/// A credential or store header given more than once (the store header under both its names
/// counts too): which one. Such a request is refused rather than "first wins", since a proxy
/// and the server could otherwise read different keys or stores from it.
pub fn repeated_credential_header(headers: &HeaderMap) -> Option<&'static str> {
    let count = |name: &str| headers.get_all(name).iter().count();
    if count("authorization") > 1 {
        Some("authorization")
    } else if count("x-api-key") > 1 {
        Some("x-api-key")
    } else if count("x-printago-storeid") + count("x-store-id") > 1 {
        Some("x-printago-storeid")
    } else {
        None
    }
}

/// `x-printago-storeid`, or its alias `x-store-id`.
pub fn store_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-printago-storeid")
        .or_else(|| headers.get("x-store-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn an_authorization_header_with_no_readable_key_is_recognised() {
        for value in ["Token abc", "ApiKey", "Basic %%%", "  "] {
            assert!(
                unreadable_authorization(&with("authorization", value)),
                "{value}"
            );
        }
        assert!(!unreadable_authorization(&with(
            "authorization",
            "ApiKey pf_x"
        )));
        assert!(!unreadable_authorization(&with("x-api-key", "pf_x")));
    }

    #[test]
    fn all_four_forms_yield_the_key() {
        assert_eq!(
            presented_key(&with("authorization", "ApiKey k1")).as_deref(),
            Some("k1")
        );
        assert_eq!(
            presented_key(&with("authorization", "apikey  k1 ")).as_deref(),
            Some("k1")
        );
        assert_eq!(
            presented_key(&with("authorization", "Bearer k2")).as_deref(),
            Some("k2")
        );
        assert_eq!(
            presented_key(&with("x-api-key", "k3")).as_deref(),
            Some("k3")
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("k4:");
        assert_eq!(
            presented_key(&with("authorization", &format!("Basic {basic}"))).as_deref(),
            Some("k4")
        );
    }

    #[test]
    fn unknown_schemes_and_garbage_yield_nothing() {
        assert_eq!(presented_key(&with("authorization", "Digest abc")), None);
        assert_eq!(presented_key(&with("authorization", "Basic !!!")), None);
        assert_eq!(presented_key(&with("authorization", "ApiKey")), None);
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn a_bare_key_is_told_apart() {
        assert!(bare_key_without_scheme(&with(
            "authorization",
            "pf_live_abc"
        )));
        assert!(!bare_key_without_scheme(&with(
            "authorization",
            "ApiKey pf_live_abc"
        )));
        assert!(!bare_key_without_scheme(&with(
            "authorization",
            "Digest xyz"
        )));
    }

    #[test]
    fn repeated_credential_headers_are_named() {
        let mut h = with("authorization", "ApiKey a");
        assert_eq!(repeated_credential_header(&h), None);
        h.append("authorization", HeaderValue::from_static("ApiKey b"));
        assert_eq!(repeated_credential_header(&h), Some("authorization"));
        let mut h = with("x-printago-storeid", "s1");
        h.insert("x-store-id", HeaderValue::from_static("s1"));
        assert_eq!(repeated_credential_header(&h), Some("x-printago-storeid"));
        let mut h = with("x-api-key", "a");
        h.append("x-api-key", HeaderValue::from_static("a"));
        assert_eq!(repeated_credential_header(&h), Some("x-api-key"));
    }

    #[test]
    fn store_header_has_an_alias() {
        assert_eq!(store_header(&with("x-printago-storeid", "s1")), Some("s1"));
        assert_eq!(store_header(&with("x-store-id", "s2")), Some("s2"));
        assert_eq!(store_header(&HeaderMap::new()), None);
    }
}
