//! Redaction of secrets for messages and logs.

/// Query parameters that carry a secret (libpq and sqlx take `?password=`; others their own).
const SECRET_PARAMS: &[&str] = &["password", "pass", "sslpassword", "secret", "token"];

/// The URL with any password replaced by `***`, for messages and logs: the one before the host,
/// and any in the query (`?password=…`).
pub fn mask_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let secret = |name: &str| SECRET_PARAMS.iter().any(|s| name.eq_ignore_ascii_case(s));
            if u.query_pairs().any(|(name, _)| secret(&name)) {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(name, value)| {
                        let value = if secret(&name) { "***".into() } else { value };
                        (name.into_owned(), value.into_owned())
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

/// Where a URL points, without what its path or query may hold (a Slack or Discord hook carries
/// its token in the path, others in `?access_token=`): `https://hooks.example.com/…`.
pub fn url_origin(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) if u.has_host() => {
            let origin = u.origin().ascii_serialization();
            let bare = u.path() == "/" && u.query().is_none() && u.fragment().is_none();
            if bare {
                origin
            } else {
                format!("{origin}/…")
            }
        }
        _ => "<unparseable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_keeps_nothing_of_the_path_or_query() {
        assert_eq!(
            url_origin("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            url_origin("https://u:pw@x.example:8443/hook?access_token=abc"),
            "https://x.example:8443/…"
        );
        assert_eq!(url_origin("https://x.example"), "https://x.example");
        assert_eq!(url_origin("not a url"), "<unparseable URL>");
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(mask_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(mask_url("not a url"), "<unparseable URL>");
        assert_eq!(
            mask_url("postgres://app@db/printfarm?sslmode=require&password=S3cret"),
            "postgres://app@db/printfarm?sslmode=require&password=***"
        );
    }
}
