//! Names for code generators: what the document says about a schema so that SDK generators
//! (openapi-python-client, openapi-generator, Postman) produce readable types instead of
//! `CommandType0…9` and `VALUE_1`.
//!
//! - A tagged union (a `oneOf` of objects told apart by one required property with a single
//!   value, as serde's `#[serde(tag = "…")]` makes them) gets one named, titled component per
//!   variant and a `discriminator` mapping each tag value to it.
//! - An enum with a value that cannot start an identifier (`3mf`) gets `x-enum-varnames`.

use std::collections::BTreeMap;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{Discriminator, Schema};
use utoipa::openapi::{OpenApi, Ref, RefOr};

pub fn add(doc: &mut OpenApi) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let mut variants = Vec::new();
    let taken: std::collections::BTreeSet<String> = components.schemas.keys().cloned().collect();
    for (union_name, schema) in components.schemas.iter_mut() {
        if let RefOr::T(Schema::OneOf(one_of)) = schema {
            let Some(tag) = common_tag(&one_of.items) else {
                continue;
            };
            let mut mapping = BTreeMap::new();
            for item in one_of.items.iter_mut() {
                let RefOr::T(Schema::Object(object)) = item else {
                    continue;
                };
                let Some(value) = single_value(object, &tag) else {
                    continue;
                };
                let name = format!("{}{union_name}", pascal_case(&value));
                if taken.contains(&name) {
                    // Never overwrite a component of that name: this union stays inline.
                    continue;
                }
                object.title = Some(name.clone());
                let reference = format!("#/components/schemas/{name}");
                variants.push((
                    name,
                    std::mem::replace(item, RefOr::Ref(Ref::new(&reference))),
                ));
                mapping.insert(value, reference);
            }
            let mut discriminator = Discriminator::new(tag);
            discriminator.mapping = mapping;
            one_of.discriminator = Some(discriminator);
        }
    }
    components.schemas.extend(variants);
    for schema in components.schemas.values_mut() {
        if let RefOr::T(Schema::Object(object)) = schema {
            add_enum_varnames(object);
        }
    }
}

/// The property every variant is told apart by: required in each, one distinct value each.
fn common_tag(items: &[RefOr<Schema>]) -> Option<String> {
    let objects: Vec<&utoipa::openapi::schema::Object> = items
        .iter()
        .map(|item| match item {
            RefOr::T(Schema::Object(object)) => Some(object),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let first = objects.first()?;
    first.required.iter().find_map(|candidate| {
        let values: Vec<String> = objects
            .iter()
            .map(|object| single_value(object, candidate))
            .collect::<Option<_>>()?;
        let mut distinct = values.clone();
        distinct.sort();
        distinct.dedup();
        (distinct.len() == values.len()).then(|| candidate.clone())
    })
}

/// The one value `property` may take in `object`, if it is required and so constrained.
fn single_value(object: &utoipa::openapi::schema::Object, property: &str) -> Option<String> {
    if !object.required.iter().any(|r| r == property) {
        return None;
    }
    let RefOr::T(Schema::Object(schema)) = object.properties.get(property)? else {
        return None;
    };
    match schema.enum_values.as_deref()? {
        [serde_json::Value::String(value)] => Some(value.clone()),
        _ => None,
    }
}

fn add_enum_varnames(object: &mut utoipa::openapi::schema::Object) {
    let Some(values) = object.enum_values.as_ref() else {
        return;
    };
    let names: Option<Vec<String>> = values.iter().map(|v| v.as_str().map(identifier)).collect();
    let Some(names) = names else { return };
    let all_plain = values
        .iter()
        .zip(&names)
        .all(|(value, name)| value.as_str() == Some(name.as_str()));
    if all_plain {
        return;
    }
    let extensions = ExtensionsBuilder::new()
        .add("x-enum-varnames", serde_json::json!(names))
        .build();
    match object.extensions.as_mut() {
        Some(existing) => existing.merge(extensions),
        None => object.extensions = Some(extensions),
    }
}

/// `3mf` → `three_mf`: a leading digit spelt out, so the name can start an identifier.
fn identifier(value: &str) -> String {
    const DIGITS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    let mut chars = value.chars();
    match chars.next() {
        Some(first) if first.is_ascii_digit() => {
            let digit = DIGITS[first.to_digit(10).unwrap_or(0) as usize];
            format!("{digit}_{}", chars.as_str())
        }
        _ => value.to_owned(),
    }
}

/// `set-temperature` → `SetTemperature`.
fn pascal_case(value: &str) -> String {
    value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_generate_well() {
        assert_eq!(pascal_case("set-temperature"), "SetTemperature");
        assert_eq!(pascal_case("pause"), "Pause");
        assert_eq!(identifier("3mf"), "three_mf");
        assert_eq!(identifier("stl"), "stl");
    }
}
