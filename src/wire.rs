//! Closed sets of names that are stored as text and sent as strings (statuses, kinds, codes):
//! one Rust enum each, so the code that writes a value, the database and the OpenAPI enum all
//! come from the same variants.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An enum written to the database and to clients as `as_str()`, which must equal its serde
/// name (`assert_wire_names` checks every variant the schema lists).
pub trait WireName: Copy + Serialize + DeserializeOwned + utoipa::ToSchema {
    fn as_str(self) -> &'static str;
}

/// For tests: every value in `T`'s OpenAPI enum deserialises, and `as_str` gives it back.
#[cfg(test)]
pub fn assert_wire_names<T: WireName>() {
    let schema = serde_json::to_value(<T as utoipa::PartialSchema>::schema()).unwrap_or_default();
    let values = schema["enum"].as_array().cloned().unwrap_or_default();
    assert!(
        !values.is_empty(),
        "{} has no enum in its schema",
        T::name()
    );
    for value in values {
        let name = value.as_str().unwrap_or_default().to_owned();
        let parsed: T = serde_json::from_value(value).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.as_str(), name, "{}", T::name());
    }
}

/// The OpenAPI schema of a closed set of names given as a list (for enums whose names come
/// from an `ALL` constant rather than from serde).
pub fn string_enum_schema(
    values: impl IntoIterator<Item = &'static str>,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .into()
}
