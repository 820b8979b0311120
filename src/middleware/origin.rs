//! Cross-site request forgery defence for cookie sessions: a request that changes something
//! must say where it comes from (`Origin`, which browsers send and pages cannot forge), and
//! that must be this site or a dashboard origin the operator allowed (`PF_CORS_ORIGINS`).
//! API-key requests carry their credential explicitly and are not checked. Pure header logic.

use axum::http::{header, HeaderMap, Method};

/// Whether `method` can change something (so needs a trusted origin on a session).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request's `Origin` is this site (the host it was sent to) or one of `allowed`.
/// A missing, `null` or repeated `Origin` is not trusted.
pub fn trusted(headers: &HeaderMap, allowed: &[String]) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let (Some(origin), None) = (origins.next(), origins.next()) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn this_site_and_allowed_origins_are_trusted() {
        let same = headers(&[
            ("host", "farm.example:8080"),
            ("origin", "http://farm.example:8080"),
        ]);
        assert!(trusted(&same, &[]));
        let tls = headers(&[("host", "farm.example"), ("origin", "https://FARM.example")]);
        assert!(trusted(&tls, &[]));
        let dash = headers(&[("host", "api.example"), ("origin", "https://dash.example")]);
        assert!(trusted(&dash, &["https://dash.example".to_owned()]));
    }

    #[test]
    fn other_missing_null_and_repeated_origins_are_not() {
        let allowed = ["https://dash.example".to_owned()];
        for h in [
            headers(&[("host", "api.example"), ("origin", "https://evil.example")]),
            headers(&[("host", "api.example")]),
            headers(&[("host", "api.example"), ("origin", "null")]),
            headers(&[
                ("host", "api.example"),
                ("origin", "https://api.example.evil"),
            ]),
            headers(&[
                ("host", "api.example"),
                ("origin", "https://api.example"),
                ("origin", "https://evil.example"),
            ]),
            headers(&[("origin", "https://api.example")]),
        ] {
            assert!(!trusted(&h, &allowed), "{h:?}");
        }
    }

    #[test]
    fn only_reads_are_safe() {
        assert!(!is_unsafe(&Method::GET));
        assert!(!is_unsafe(&Method::HEAD));
        assert!(is_unsafe(&Method::POST));
        assert!(is_unsafe(&Method::PATCH));
        assert!(is_unsafe(&Method::DELETE));
    }
}
