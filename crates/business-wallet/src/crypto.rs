//! Encryption at rest (AES-256-GCM) for channel secrets and private keys, and the key files
//! that the embedded default generates into the data directory.

use std::io::Write as _;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore as _;
use secrecy::ExposeSecret as _;

use crate::config::Settings;

const NONCE_LEN: usize = 12;

/// Encrypts and decrypts small secrets. The stored form is `nonce || ciphertext+tag`.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// Stored ciphertext that does not decrypt with the configured key.
#[derive(Debug, thiserror::Error)]
#[error("stored secret cannot be decrypted with the configured key")]
pub struct DecryptError;

impl SecretBox {
    /// A box around a 32-byte key.
    pub fn new(key: &[u8; 32]) -> SecretBox {
        SecretBox {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// The box for the configured key (`secrets.encryption_key`), or for the key file in the
    /// data directory, generated on first use.
    ///
    /// # Errors
    /// The key file cannot be read or written, or holds something other than a 32-byte key.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<SecretBox> {
        let key = match &settings.secrets.encryption_key {
            Some(encoded) => STANDARD
                .decode(encoded.expose_secret().trim())
                .context("secrets.encryption_key is not base64")?,
            None => read_or_create_key_file(&settings.secret_key_file(), 32)?,
        };
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| anyhow::anyhow!("the secret-encryption key must be 32 bytes"))?;
        Ok(SecretBox::new(&key))
    }

    /// Encrypts with a fresh random nonce.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), plaintext)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts what [`SecretBox::encrypt`] produced.
    ///
    /// # Errors
    /// Wrong key, or tampered or truncated data.
    pub fn decrypt(&self, stored: &[u8]) -> Result<Vec<u8>, DecryptError> {
        if stored.len() < NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| DecryptError)?;
        self.cipher
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| DecryptError)
    }
}

/// Reads a base64 key of `len` bytes from `path`, or generates one there (mode 0600, parent
/// directories created) when the file does not exist.
///
/// # Errors
/// I/O failure, or a file whose content is not a base64 key of the right length.
pub fn read_or_create_key_file(path: &Path, len: usize) -> anyhow::Result<Vec<u8>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = STANDARD
                .decode(text.trim())
                .with_context(|| format!("key file {} is not base64", path.display()))?;
            anyhow::ensure!(key.len() == len, "key file {} must hold {len} bytes", path.display());
            Ok(key)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
                }
            }
            let mut key = vec![0u8; len];
            rand::rngs::OsRng.fill_bytes(&mut key);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(STANDARD.encode(&key).as_bytes())
                        .and_then(|_| file.sync_all())
                        .with_context(|| format!("cannot write key file {}", path.display()))?;
                    Ok(key)
                }
                // Another process created it first: use theirs.
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => read_or_create_key_file(path, len),
                Err(err) => Err(err).with_context(|| format!("cannot create key file {}", path.display())),
            }
        }
        Err(err) => Err(err).with_context(|| format!("cannot read key file {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let sb = SecretBox::new(&[7u8; 32]);
        let sealed = sb.encrypt(b"whsec_abc");
        assert_ne!(&sealed[NONCE_LEN..], b"whsec_abc");
        assert_eq!(sb.decrypt(&sealed).unwrap(), b"whsec_abc");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sb.decrypt(&tampered).is_err());
        assert!(SecretBox::new(&[8u8; 32]).decrypt(&sealed).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/key");
        let first = read_or_create_key_file(&path, 32).unwrap();
        let second = read_or_create_key_file(&path, 32).unwrap();
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
