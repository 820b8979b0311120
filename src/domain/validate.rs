//! Field validation shared by handlers and the CLI: each check appends `FieldError`s with JSON pointers, so
//! a client sees every problem in one response.

use super::error::{DomainError, DomainResult};
use crate::auth::Permission;
use crate::error::FieldError;
use ipnet::IpNet;

/// An IPv4/IPv6 address or CIDR range, as documented in OpenAPI. `Errors::allowlist` decides;
/// the pattern accepts exactly what it accepts (a test compares the two), so that a client
/// generated from the document neither sends what is refused nor refuses what is accepted.
pub struct IpRange;

/// Dotted quads without leading zeros, each IPv6 form of RFC 4291 §2.2 (full, compressed, with
/// an embedded IPv4 address), and an optional prefix length within the family's range.
pub const IP_RANGE_PATTERN: &str = r"^(((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(/(3[0-2]|[12]?\d))?|(([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,7}:|([0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,5}(:[0-9A-Fa-f]{1,4}){1,2}|([0-9A-Fa-f]{1,4}:){1,4}(:[0-9A-Fa-f]{1,4}){1,3}|([0-9A-Fa-f]{1,4}:){1,3}(:[0-9A-Fa-f]{1,4}){1,4}|([0-9A-Fa-f]{1,4}:){1,2}(:[0-9A-Fa-f]{1,4}){1,5}|[0-9A-Fa-f]{1,4}:(:[0-9A-Fa-f]{1,4}){1,6}|:((:[0-9A-Fa-f]{1,4}){1,7}|:)|([0-9A-Fa-f]{1,4}:){6}((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)|::([0-9A-Fa-f]{1,4}:){0,5}((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)|([0-9A-Fa-f]{1,4}:){1}:([0-9A-Fa-f]{1,4}:){0,4}((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)|([0-9A-Fa-f]{1,4}:){2}:([0-9A-Fa-f]{1,4}:){0,3}((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)|([0-9A-Fa-f]{1,4}:){3}:([0-9A-Fa-f]{1,4}:){0,2}((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)|([0-9A-Fa-f]{1,4}:){4}:([0-9A-Fa-f]{1,4}:){0,1}((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)|([0-9A-Fa-f]{1,4}:){5}:([0-9A-Fa-f]{1,4}:){0,0}((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d))(/(12[0-8]|1[01]\d|[1-9]?\d))?)$";

impl utoipa::PartialSchema for IpRange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(IP_RANGE_PATTERN))
            .description(Some(
                "An IPv4 or IPv6 address (a single host) or CIDR range, e.g. 203.0.113.0/24",
            ))
            .examples(["203.0.113.0/24"])
            .into()
    }
}

impl utoipa::ToSchema for IpRange {}

/// What `Errors::name` accepts, as a JSON Schema pattern: one character at least that is not
/// white space, and no control characters inside the white space the server trims from either
/// end (a test compares the two). White space is Unicode's `White_Space`, spelled out, since
/// `\s` differs between regex dialects (Python's takes U+001C–U+001F, JavaScript's U+FEFF).
pub const NAME_PATTERN: &str = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";

/// What `Errors::email` accepts, as a JSON Schema pattern (without the white space it trims):
/// something, `@`, something, with no second `@`, white space or control character.
pub const EMAIL_PATTERN: &str = r"^[^@\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$";

/// The documented form of an email address in a request.
pub fn email_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("An email address: 3–254 characters, one `@`."))
        .min_length(Some(3))
        .max_length(Some(254))
        .pattern(Some(EMAIL_PATTERN))
        .build()
}

/// The documented form of a name of 1–`max` characters; `null` allowed where a change may
/// leave the name out. Used by request types through `#[schema(schema_with = …)]`.
fn name_schema(max: usize, nullable: bool) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let schema_type = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(schema_type)
        .description(Some(format!("1–{max} characters, not only spaces.")))
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(NAME_PATTERN))
        .build()
}

pub fn name_100() -> utoipa::openapi::Object {
    name_schema(100, false)
}

pub fn name_200() -> utoipa::openapi::Object {
    name_schema(200, false)
}

pub fn optional_name_100() -> utoipa::openapi::Object {
    name_schema(100, true)
}

pub fn optional_name_200() -> utoipa::openapi::Object {
    name_schema(200, true)
}

pub const MAX_TAGS: usize = 20;
pub const TAG_MAX: usize = 50;

/// A tag: 1–50 characters, not only spaces, no control characters (surrounding spaces are
/// trimmed): a name, as `NAME_PATTERN` documents.
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .min_length(Some(1))
            .max_length(Some(TAG_MAX))
            .pattern(Some(NAME_PATTERN))
            .examples(["hardened-nozzle"])
            .into()
    }
}

impl utoipa::ToSchema for Tag {}

/// The most problems one answer lists: a body of a megabyte can hold a hundred thousand bad
/// entries, and an answer must not be many times the request.
pub const MAX_PROBLEMS: usize = 100;

#[derive(Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    /// Adds a problem, unless `MAX_PROBLEMS` are already listed.
    pub fn add(&mut self, pointer: impl Into<String>, code: &str, message: impl Into<String>) {
        if self.0.len() < MAX_PROBLEMS {
            self.0.push(FieldError::new(pointer, code, message));
        }
    }

    /// Whether a problem was already found at `pointer` (so a further check need not add a
    /// second for the same value).
    pub fn found_at(&self, pointer: &str) -> bool {
        self.0.iter().any(|error| error.pointer == pointer)
    }

    pub fn finish(self) -> DomainResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(self.0))
        }
    }

    /// A name of at most `max` characters as sent, not only white space, trimmed, without
    /// control characters (request types document the same rule as `NAME_PATTERN` with
    /// `maxLength`, which counts what is sent: so does this).
    pub fn name(&mut self, pointer: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if value.chars().count() > max {
            self.add(
                pointer,
                "too_long",
                format!("must be at most {max} characters"),
            );
        } else if trimmed.is_empty() {
            self.add(pointer, "required", "must not be empty");
        } else if trimmed.chars().any(char::is_control) {
            self.add(
                pointer,
                "invalid_value",
                "must not contain control characters",
            );
        }
        trimmed.to_owned()
    }

    /// An email address: at most 254 characters as sent, trimmed, 3 at least, one `@` with
    /// something on each side, no spaces or control characters. (Whether it reaches anyone is
    /// for the mail to tell.)
    pub fn email(&mut self, pointer: &str, value: &str) -> String {
        let sent_length = value.chars().count();
        let value = value.trim();
        let shaped = value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
        let clean = !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if sent_length > 254 || value.chars().count() < 3 || !shaped || !clean {
            self.add(pointer, "invalid_value", "must be an email address");
        }
        value.to_owned()
    }

    /// A new password: `MIN`–`MAX` characters (any characters; length is what makes it strong).
    pub fn new_password(&mut self, pointer: &str, value: &str) {
        use crate::auth::passwords::{MAX_LENGTH, MIN_LENGTH};
        let length = value.chars().count();
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
            self.add(
                pointer,
                "invalid_length",
                format!("must be {MIN_LENGTH}–{MAX_LENGTH} characters"),
            );
        }
    }

    /// Optional text: at most `max` characters as sent (what `maxLength` documents), trimmed,
    /// `None` when empty.
    pub fn optional_text(
        &mut self,
        pointer: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        let sent = value?;
        let value = sent.trim();
        if sent.chars().count() > max {
            self.add(
                pointer,
                "too_long",
                format!("must be at most {max} characters"),
            );
        }
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// Up to 20 tags of at most 50 characters as sent, not only white space, without control
    /// characters, trimmed and deduplicated.
    pub fn tags(&mut self, pointer: &str, values: &[String]) -> Vec<String> {
        if values.len() > MAX_TAGS {
            // Nothing more is checked of a list this long (one problem, not one per entry).
            self.add(pointer, "too_many", format!("at most {MAX_TAGS} tags"));
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::new();
        for (i, sent) in values.iter().enumerate() {
            let tag = sent.trim();
            if tag.is_empty() || sent.chars().count() > TAG_MAX || tag.chars().any(char::is_control)
            {
                self.add(
                    format!("{pointer}/{i}"),
                    "invalid_value",
                    format!("1–{TAG_MAX} characters, no control characters"),
                );
            } else if !out.iter().any(|t| t == tag) {
                out.push(tag.to_owned());
            }
        }
        out
    }

    /// A number within `range`, if given.
    pub fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        pointer: &str,
        value: Option<T>,
        range: std::ops::RangeInclusive<T>,
    ) -> Option<T> {
        let v = value?;
        if !range.contains(&v) {
            self.add(
                pointer,
                "out_of_range",
                format!("must be between {} and {}", range.start(), range.end()),
            );
        }
        Some(v)
    }

    /// Flags each requested id that is not among those found in the store.
    pub fn references(
        &mut self,
        pointer: impl Fn(usize) -> String,
        requested: &[uuid::Uuid],
        found: &[uuid::Uuid],
        what: &str,
    ) {
        for (i, id) in requested.iter().enumerate() {
            if !found.contains(id) {
                self.add(
                    pointer(i),
                    "not_found",
                    format!("no such {what} in this store"),
                );
            }
        }
    }

    /// Permission names, deduplicated, each from the catalogue.
    pub fn permissions(&mut self, pointer: &str, values: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, value) in values.iter().enumerate() {
            match Permission::parse(value) {
                Some(p) if !out.iter().any(|o| o == p.as_str()) => out.push(p.as_str().to_owned()),
                Some(_) => {}
                None => self.add(
                    format!("{pointer}/{i}"),
                    "unknown_permission",
                    format!("{value:?} is not a permission"),
                ),
            }
        }
        out
    }

    /// Addresses and CIDR ranges, normalised (`10.1.2.3/8` → `10.0.0.0/8`), deduplicated, at most
    /// `max`.
    pub fn allowlist(&mut self, pointer: &str, values: &[String], max: usize) -> Vec<IpNet> {
        if values.len() > max {
            self.add(pointer, "too_many", format!("at most {max} entries"));
            return Vec::new();
        }
        let mut out: Vec<IpNet> = Vec::new();
        for (i, value) in values.iter().enumerate() {
            match crate::net::parse_cidr(value) {
                Some(net) if !out.contains(&net) => out.push(net),
                Some(_) => {}
                None => self.add(
                    format!("{pointer}/{i}"),
                    "invalid_cidr",
                    format!(
                        "{:?} is not an IP address or CIDR range",
                        value.chars().take(64).collect::<String>()
                    ),
                ),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{Errors, EMAIL_PATTERN, IP_RANGE_PATTERN, NAME_PATTERN};

    /// Addresses of every shape: 0–9 groups on either side of an optional `::`, with or without
    /// an IPv4 tail, leading zeros, and prefixes in and out of range.
    fn candidates() -> Vec<String> {
        let mut out = Vec::new();
        for left in 0..=8 {
            for right in 0..=8 {
                for tail in ["", "1.2.3.4", "01.2.3.4"] {
                    let mut groups: Vec<String> =
                        (0..left).map(|i| format!("{:x}", i + 0xa)).collect();
                    let right_groups: Vec<String> =
                        (0..right).map(|i| format!("{:X}", i + 0xf0)).collect();
                    let with_tail = |mut parts: Vec<String>| {
                        if !tail.is_empty() {
                            parts.push(tail.to_owned());
                        }
                        parts.join(":")
                    };
                    out.push(with_tail(
                        groups.iter().chain(&right_groups).cloned().collect(),
                    ));
                    let compressed =
                        format!("{}::{}", groups.join(":"), with_tail(right_groups.clone()));
                    out.push(compressed);
                    groups.clear();
                }
            }
        }
        out.extend(
            [
                "1.2.3.4",
                "255.255.255.255",
                "256.1.1.1",
                "1.2.3",
                "01.2.3.4",
                ":::",
                "1::2::3",
            ]
            .map(str::to_owned),
        );
        let mut with_prefixes = Vec::new();
        for address in &out {
            for prefix in [
                "", "/0", "/8", "/32", "/33", "/64", "/128", "/129", "/05", "/",
            ] {
                with_prefixes.push(format!("{address}{prefix}"));
            }
        }
        with_prefixes
    }

    #[test]
    fn the_documented_pattern_accepts_exactly_what_the_server_accepts() {
        let pattern = regex::Regex::new(IP_RANGE_PATTERN).unwrap();
        let mut disagreements = Vec::new();
        let candidates = candidates();
        for candidate in &candidates {
            let documented = pattern.is_match(candidate);
            let accepted = crate::net::parse_cidr(candidate).is_some();
            if documented != accepted {
                disagreements.push(format!(
                    "{candidate}: pattern {documented}, server {accepted}"
                ));
            }
        }
        assert!(candidates.len() > 2000);
        assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    }

    #[test]
    fn what_the_documented_email_pattern_accepts_the_server_accepts() {
        let pattern = regex::Regex::new(EMAIL_PATTERN).unwrap();
        let pieces = [
            "", "a", "@", "Ä", " ", "\u{0}", "\u{85}", "\u{a0}", "\u{3000}", "\t", ".", "\u{200b}",
        ];
        let mut disagreements = Vec::new();
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        let candidate = format!("{a}{b}{c}{d}");
                        let mut errors = Errors::default();
                        errors.email("/email", &candidate);
                        let accepted = errors.finish().is_ok();
                        // The pattern may be stricter (white space the server trims), never
                        // looser.
                        if pattern.is_match(&candidate) && !accepted {
                            disagreements.push(format!("{candidate:?}"));
                        }
                    }
                }
            }
        }
        assert!(pattern.is_match("owner@example.com"));
        assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    }

    #[test]
    fn the_documented_name_pattern_accepts_exactly_what_names_and_tags_accept() {
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        let pieces = [
            "", " ", "a", "Ä", "\u{3000}", "\t", "\n", "\u{0}", "\u{1f}", "\u{7f}", "\u{85}",
            "\u{9f}", "\u{a0}", "\u{200b}", "\u{2028}", "x y", "\u{1c}", "\u{feff}", "\u{2003}",
            "\r",
        ];
        let mut disagreements = Vec::new();
        for first in pieces {
            for second in pieces {
                for third in pieces {
                    let candidate = format!("{first}{second}{third}");
                    let documented = pattern.is_match(&candidate);
                    let mut as_name = Errors::default();
                    as_name.name("/name", &candidate, 100);
                    let mut as_tag = Errors::default();
                    as_tag.tags("/tags", std::slice::from_ref(&candidate));
                    for (what, errors) in [("name", as_name), ("tag", as_tag)] {
                        let accepted = errors.finish().is_ok();
                        if documented != accepted {
                            disagreements.push(format!(
                                "{candidate:?}: pattern {documented}, {what} {accepted}"
                            ));
                        }
                    }
                }
            }
        }
        assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    }

    #[test]
    fn lengths_count_what_is_sent_as_max_length_documents() {
        let padded = format!("  {}  ", "n".repeat(99));
        let mut e = Errors::default();
        e.name("/name", &padded, 100);
        e.optional_text("/notes", Some(&padded), 100);
        e.tags("/tags", &[format!(" {} ", "t".repeat(49))]);
        e.email("/email", &format!("{}a@example.com", " ".repeat(250)));
        let Err(crate::domain::error::DomainError::Invalid(errors)) = e.finish() else {
            panic!("accepted");
        };
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/name", "/notes", "/tags/0", "/email"]);

        let mut e = Errors::default();
        assert_eq!(e.name("/name", " x ", 3), "x");
        assert_eq!(e.optional_text("/notes", Some("  "), 2), None);
        assert_eq!(e.tags("/tags", &[" t ".into()]), ["t"]);
        assert_eq!(e.email("/email", " a@b "), "a@b");
        assert!(e.finish().is_ok());
    }
}
