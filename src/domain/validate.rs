//! Field validation shared by handlers and the CLI: each check appends `FieldError`s with JSON pointers, so
//! a client sees every problem in one response.

use super::error::{DomainError, DomainResult};
use crate::auth::{Permission, Role};
use crate::error::FieldError;
use ipnet::IpNet;

/// An IPv4/IPv6 address or CIDR range, as documented in OpenAPI (the pattern is only a first
/// filter; `Errors::allowlist` decides).
pub struct IpRange;

impl utoipa::PartialSchema for IpRange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(r"^(((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)(/(3[0-2]|[12]?\d))?|[0-9A-Fa-f:]*::?[0-9A-Fa-f:.]*(/(12[0-8]|1[01]\d|\d?\d))?)$"))
            .description(Some("An IPv4 or IPv6 address (a single host) or CIDR range, e.g. 203.0.113.0/24"))
            .examples(["203.0.113.0/24"])
            .into()
    }
}

impl utoipa::ToSchema for IpRange {}

pub const MAX_TAGS: usize = 20;
pub const TAG_MAX: usize = 50;

/// A tag: 1–50 characters, not only spaces (surrounding spaces are trimmed).
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .min_length(Some(1))
            .max_length(Some(TAG_MAX))
            .pattern(Some(r"\S"))
            .examples(["hardened-nozzle"])
            .into()
    }
}

impl utoipa::ToSchema for Tag {}

#[derive(Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn add(&mut self, pointer: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(pointer, code, message));
    }

    pub fn finish(self) -> DomainResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(self.0))
        }
    }

    /// A trimmed, non-empty name of at most `max` characters without control characters
    /// (request types document the same rule as a `pattern`).
    pub fn name(&mut self, pointer: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.add(pointer, "required", "must not be empty");
        } else if trimmed.chars().count() > max {
            self.add(
                pointer,
                "too_long",
                format!("must be at most {max} characters"),
            );
        } else if trimmed.chars().any(char::is_control) {
            self.add(
                pointer,
                "invalid_value",
                "must not contain control characters",
            );
        }
        trimmed.to_owned()
    }

    /// Optional text: trimmed, `None` when empty, at most `max` characters.
    pub fn optional_text(
        &mut self,
        pointer: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        let value = value?.trim();
        if value.is_empty() {
            return None;
        }
        if value.chars().count() > max {
            self.add(
                pointer,
                "too_long",
                format!("must be at most {max} characters"),
            );
        }
        Some(value.to_owned())
    }

    /// Up to 20 tags of 1–50 characters, trimmed and deduplicated.
    pub fn tags(&mut self, pointer: &str, values: &[String]) -> Vec<String> {
        if values.len() > MAX_TAGS {
            self.add(pointer, "too_many", format!("at most {MAX_TAGS} tags"));
        }
        let mut out: Vec<String> = Vec::new();
        for (i, tag) in values.iter().enumerate() {
            let tag = tag.trim();
            if tag.is_empty() || tag.chars().count() > TAG_MAX {
                self.add(
                    format!("{pointer}/{i}"),
                    "invalid_value",
                    format!("1–{TAG_MAX} characters"),
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

    /// Role ids, deduplicated, each a built-in role.
    pub fn roles(&mut self, pointer: &str, values: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, value) in values.iter().enumerate() {
            match Role::parse(value) {
                Some(role) if !out.iter().any(|r| r == role.id()) => out.push(role.id().to_owned()),
                Some(_) => {}
                None => self.add(
                    format!("{pointer}/{i}"),
                    "unknown_role",
                    format!("{value:?} is not a role"),
                ),
            }
        }
        out
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
