//! The external keys: the UUIDs by which the API, the UI and the events name a wallet, an
//! identifier, a channel and a delivery. Each is its own type, so a channel's key cannot be
//! passed where a wallet's is expected; each is parsed once where it enters (a path, a query, a
//! form) into its canonical hyphenated form, and stored and sent as that TEXT unchanged.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::domain::error::DomainError;

/// A text that is not a UUID where an external key was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: `{value}` is not a UUID")]
pub struct InvalidKey {
    /// The parameter or field that held it.
    pub field: &'static str,
    /// What it held.
    pub value: String,
}

impl From<InvalidKey> for DomainError {
    fn from(err: InvalidKey) -> Self {
        DomainError::invalid_field(err.field, format!("`{}` is not a UUID", err.value))
    }
}

/// `value` as a UUID in canonical (lower-case, hyphenated) form: an external key's text, or an
/// event id's.
///
/// # Errors
/// [`InvalidKey`] naming `field` when `value` is not a UUID.
pub fn canonical_uuid(field: &'static str, value: &str) -> Result<String, InvalidKey> {
    Uuid::parse_str(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| InvalidKey {
            field,
            value: value.to_string(),
        })
}

/// Declares an external key type: a UUID kept as its canonical text, parsed with
/// [`InvalidKey`] naming the parameter, bound and decoded by sqlx as that text on every
/// backend, and serialized as a plain JSON string.
macro_rules! external_key {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            /// The field of the API that holds this key, named by a parse error.
            pub const FIELD: &'static str = $field;

            /// A new random key (UUID v4).
            pub fn generate() -> Self {
                $name(Uuid::new_v4().hyphenated().to_string())
            }

            /// The key written as `value`, in canonical form (any UUID spelling is accepted).
            ///
            /// # Errors
            /// [`InvalidKey`] naming [`Self::FIELD`] when `value` is not a UUID.
            pub fn parse(value: &str) -> Result<Self, InvalidKey> {
                Self::parse_as(Self::FIELD, value)
            }

            /// Like [`Self::parse`], naming `field` (a query or form parameter) in the error.
            ///
            /// # Errors
            /// [`InvalidKey`] when `value` is not a UUID.
            pub fn parse_as(field: &'static str, value: &str) -> Result<Self, InvalidKey> {
                canonical_uuid(field, value).map($name)
            }

            /// The canonical text, as stored.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// A JSON string that is a UUID.
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

    };
}

external_key! {
    /// A wallet's external key (`walletExternalKey`).
    WalletKey, "walletExternalKey"
}

external_key! {
    /// An identifier's external key (`identifierExternalKey`).
    IdentifierKey, "identifierExternalKey"
}

external_key! {
    /// A channel's external key (`channelExternalKey`).
    ChannelKey, "channelExternalKey"
}

external_key! {
    /// A delivery's external key (`deliveryExternalKey`).
    DeliveryKey, "deliveryExternalKey"
}

#[cfg(test)]
mod tests {
    use super::{ChannelKey, WalletKey};
    use crate::domain::error::DomainError;

    #[test]
    fn a_key_is_kept_in_canonical_form() {
        let key = WalletKey::parse("6F9619FF8B86D011B42D00C04FC964FF").unwrap();
        assert_eq!(key.as_str(), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
        assert_eq!(WalletKey::parse(key.as_str()).unwrap(), key);
        assert_eq!(serde_json::to_value(&key).unwrap(), key.as_str());
    }

    #[test]
    fn a_bad_key_names_its_parameter() {
        let err = ChannelKey::parse("erp").unwrap_err();
        assert_eq!(err.field, "channelExternalKey");
        let err = ChannelKey::parse_as("channel", "erp").unwrap_err();
        match DomainError::from(err) {
            DomainError::Invalid { message, details } => {
                assert_eq!(message, "channel: `erp` is not a UUID");
                assert_eq!(details.unwrap()["field"], "channel");
            }
            other => panic!("not a 400: {other:?}"),
        }
    }
}
