//! Field rules shared by the create bodies. Each returns a 400 that names the field.

use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use crate::domain::error::DomainError;

/// For `#[serde(deserialize_with)]` on an optional nested object: accepts an object or null
/// and refuses the positional (array) form that serde otherwise accepts for structs. The map
/// is read in place, so error paths such as `address.city` are kept.
///
/// # Errors
/// The value is neither null nor an object, or does not fit `T`.
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectOrNull<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOrNull<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object or null")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, deserializer: D2) -> Result<Self::Value, D2::Error> {
            deserializer.deserialize_map(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(Some)
        }
    }

    deserializer.deserialize_option(ObjectOrNull(PhantomData))
}

/// A required single-line text: trimmed, not empty, at most `max` characters, no control
/// characters.
///
/// # Errors
/// 400 naming `field`.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::invalid_field(field, "must not be empty"));
    }
    optional_text(field, Some(value), max).map(|v| v.unwrap_or_default())
}

/// An optional single-line text; empty (after trimming) counts as absent.
///
/// # Errors
/// 400 naming `field`.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, DomainError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max {
        return Err(DomainError::invalid_field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid_field(field, "must not contain control characters"));
    }
    Ok(Some(value.to_string()))
}

/// An optional email address.
///
/// # Errors
/// 400 naming `field`.
pub fn optional_email(field: &str, value: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(value) = optional_text(field, value, 254)? else {
        return Ok(None);
    };
    if !email_address::EmailAddress::is_valid(&value) || !value.contains('.') {
        return Err(DomainError::invalid_field(
            field,
            format!("`{value}` is not an email address"),
        ));
    }
    Ok(Some(value))
}

/// An optional absolute `http` or `https` URL.
///
/// # Errors
/// 400 naming `field`.
pub fn optional_web_url(field: &str, value: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(value) = optional_text(field, value, 2048)? else {
        return Ok(None);
    };
    match url::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(Some(value))
        }
        _ => Err(DomainError::invalid_field(
            field,
            format!("`{value}` is not an http(s) URL"),
        )),
    }
}

/// An optional phone number: digits with an optional leading `+`, spaces, dashes, dots and
/// parentheses; 3 to 32 characters and at least 3 digits.
///
/// # Errors
/// 400 naming `field`.
pub fn optional_phone(field: &str, value: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(value) = optional_text(field, value, 32)? else {
        return Ok(None);
    };
    let body = value.strip_prefix('+').unwrap_or(&value);
    let allowed = body.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c));
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !allowed || digits < 3 {
        return Err(DomainError::invalid_field(
            field,
            format!("`{value}` is not a phone number"),
        ));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(required_text("f", "  a ", 5).unwrap(), "a");
        assert!(required_text("f", "   ", 5).is_err());
        assert!(required_text("f", "abcdef", 5).is_err());
        assert!(required_text("f", "a\u{0007}b", 5).is_err());
        assert_eq!(optional_text("f", Some(" "), 5).unwrap(), None);
        assert!(optional_email("email", Some("ops@example.com")).unwrap().is_some());
        assert!(optional_email("email", Some("not-an-email")).is_err());
        assert!(optional_web_url("website", Some("https://example.com/x"))
            .unwrap()
            .is_some());
        assert!(optional_web_url("website", Some("ftp://example.com")).is_err());
        assert!(optional_web_url("website", Some("example.com")).is_err());
        assert!(optional_phone("phoneNumber", Some("+31 20 555 0100"))
            .unwrap()
            .is_some());
        assert!(optional_phone("phoneNumber", Some("call me")).is_err());
    }
}
