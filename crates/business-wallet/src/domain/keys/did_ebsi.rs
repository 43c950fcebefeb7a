//! The legal-entity form of `did:ebsi`, and the validation of the EBSI environment it is meant
//! for.

use rand::rngs::OsRng;
use rand::RngCore as _;

use super::{snippet, KeyError};

/// Longest EBSI environment name.
const MAX_ENVIRONMENT_LEN: usize = 32;
/// Leading byte of a legal-entity did:ebsi subject identifier.
const EBSI_LEGAL_ENTITY_VERSION: u8 = 0x01;
/// Number of random bytes in a legal-entity did:ebsi subject identifier.
const EBSI_RANDOM_LEN: usize = 16;

/// Generates a new legal-entity `did:ebsi` identifier.
///
/// The identifier is `did:ebsi:` followed by the multibase base58btc encoding
/// (`z` prefix) of the version byte `0x01` and 16 random bytes. Which EBSI
/// environment it is registered in is kept apart; see [`ebsi_environment`].
pub fn did_ebsi() -> String {
    let mut bytes = [0u8; 1 + EBSI_RANDOM_LEN];
    bytes[0] = EBSI_LEGAL_ENTITY_VERSION;
    OsRng.fill_bytes(&mut bytes[1..]);
    format!("did:ebsi:z{}", bs58::encode(bytes).into_string())
}

/// Validates the name of an EBSI environment such as `pilot`,
/// `conformance` or `production`, returning it unchanged.
///
/// Names of 1 to 32 lowercase ASCII letters, digits and hyphens are accepted.
pub fn ebsi_environment(env: &str) -> Result<String, KeyError> {
    if env.is_empty() {
        return Err(KeyError::InvalidEnvironment(
            "the environment name must not be empty".to_owned(),
        ));
    }
    if env.len() > MAX_ENVIRONMENT_LEN {
        return Err(KeyError::InvalidEnvironment(format!(
            "the environment name is longer than {MAX_ENVIRONMENT_LEN} characters"
        )));
    }
    if !env
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(KeyError::InvalidEnvironment(format!(
            "\"{}\" may only contain lowercase letters, digits and hyphens",
            snippet(env)
        )));
    }
    Ok(env.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_ebsi_is_legal_entity_form() {
        let did = did_ebsi();
        let encoded = did.strip_prefix("did:ebsi:z").unwrap();
        let bytes = bs58::decode(encoded).into_vec().unwrap();
        assert_eq!(bytes.len(), 17);
        assert_eq!(bytes[0], 0x01);
        assert_ne!(did, did_ebsi());
    }

    #[test]
    fn ebsi_environment_validation() {
        for env in ["pilot", "conformance", "production", "test-2"] {
            assert_eq!(ebsi_environment(env).unwrap(), env);
        }
        for env in ["", "Pilot", "pi lot", "pilot_1", &"a".repeat(33)] {
            assert!(
                matches!(ebsi_environment(env), Err(KeyError::InvalidEnvironment(_))),
                "{env}"
            );
        }
    }
}
