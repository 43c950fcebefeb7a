//! The deployment's Ed25519 webhook signing keys: which key signs now, which are published,
//! where they come from, and their rotation.
//!
//! Every key has a `signs_from` time. At any moment the key with the latest `signs_from` not in
//! the future signs (the `v1a` entry of `X-Credenco-Signature`, and of `webhook-signature` on a
//! Standard Webhooks channel). The key set published at `/api/public/webhook-signing-keys.json`
//! holds every key that signs now or will sign later (so a new key is published before its
//! first signature) and every key that stopped signing less than `grace_secs` ago (so a request
//! signed just before a rotation still verifies when it arrives late or is checked again).
//!
//! Keys come from `integration.webhook.signing.keys` (production: every instance has the same
//! list), or, when none are configured, from a file in the data directory that the embedded
//! default generates on first start, its private keys sealed with the secret-encryption key.
//! [`rotate_key_file`] (the `business-wallet signing-key rotate` command) appends the next key
//! to that file with a `signs_from` one `publish_lead_secs` ahead; running instances notice the
//! changed file within a second.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::SigningKey;
use rand::RngCore as _;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::Settings;
use crate::crypto::SecretBox;

/// How often a running instance looks at the key file's modification time.
const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// One signing key.
#[derive(Clone)]
pub struct KeyEntry {
    /// Its name in the key set and in signatures.
    pub kid: String,
    /// The private key.
    pub key: SigningKey,
    /// When it starts signing, epoch milliseconds.
    pub signs_from_ms: i64,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("signs_from_ms", &self.signs_from_ms)
            .finish_non_exhaustive()
    }
}

/// Keys ordered by `signs_from`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
}

impl KeySet {
    /// The set of `entries`, in `signs_from` order.
    pub fn new(mut entries: Vec<KeyEntry>) -> KeySet {
        entries.sort_by_key(|e| e.signs_from_ms);
        KeySet { entries }
    }

    /// The key that signs at `now_ms`: the latest whose `signs_from` has come. None before
    /// the first key's time.
    pub fn signer(&self, now_ms: i64) -> Option<&KeyEntry> {
        self.entries.iter().rev().find(|e| e.signs_from_ms <= now_ms)
    }

    /// The keys published at `now_ms`: every key except those that stopped signing (the next
    /// key's `signs_from` came) more than `grace_ms` ago.
    pub fn published(&self, now_ms: i64, grace_ms: i64) -> Vec<&KeyEntry> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, _)| match self.entries.get(i + 1) {
                Some(next) => next.signs_from_ms > now_ms || next.signs_from_ms.saturating_add(grace_ms) > now_ms,
                None => true,
            })
            .map(|(_, e)| e)
            .collect()
    }

    /// The JWKS of the keys published at `now_ms`.
    pub fn jwks(&self, now_ms: i64, grace_ms: i64) -> Value {
        let keys: Vec<Value> = self
            .published(now_ms, grace_ms)
            .into_iter()
            .map(|e| webhook_verify::public_jwk(&e.kid, &e.key.verifying_key()))
            .collect();
        json!({ "keys": keys })
    }
}

/// The keys of this deployment, re-read from their file when it changes. Cheap to share.
pub struct SigningKeys {
    source: Source,
    grace_ms: i64,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys").finish_non_exhaustive()
    }
}

enum Source {
    Configured,
    File { path: PathBuf, secret_box: Box<SecretBox> },
}

struct Loaded {
    set: Arc<KeySet>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// The key file: its keys' private halves sealed with the secret-encryption key.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyFile {
    keys: Vec<FileKey>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileKey {
    kid: String,
    /// RFC 3339.
    signs_from: String,
    /// Base64 of the sealed 32-byte private key.
    sealed_private_key: String,
}

impl SigningKeys {
    /// The configured keys, or those of the key file (generated, with one key signing from
    /// now, when there is none).
    ///
    /// # Errors
    /// A configured key that cannot be used (named by its index), or a key file that cannot be
    /// read, written or opened with the secret-encryption key.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<SigningKeys> {
        let signing = &settings.integration.webhook.signing;
        let grace_ms = i64::try_from(signing.grace_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let (source, set, modified) = if signing.keys.is_empty() {
            if settings.backend() == crate::config::Backend::Postgres {
                // Instances with data directories of their own would each sign with, and
                // publish, a key of their own: a receiver fetching the key set from one
                // instance could not verify what another sent.
                tracing::warn!(
                    "integration.webhook.signing.keys is not configured: this instance signs with the key file in its data directory; give every instance sharing the database the same keys"
                );
            }
            let path = settings.signing_key_file();
            let secret_box = SecretBox::from_settings(settings)?;
            let set = load_or_create_file(&path, &secret_box)?;
            let modified = modified_time(&path);
            (
                Source::File {
                    path,
                    secret_box: Box::new(secret_box),
                },
                set,
                modified,
            )
        } else {
            (Source::Configured, configured_keys(settings)?, None)
        };
        Ok(SigningKeys {
            source,
            grace_ms,
            loaded: Mutex::new(Loaded {
                set: Arc::new(set),
                modified,
                checked: Instant::now(),
            }),
        })
    }

    /// A fixed set (tests, embedding applications).
    pub fn fixed(set: KeySet, grace: Duration) -> SigningKeys {
        SigningKeys {
            source: Source::Configured,
            grace_ms: i64::try_from(grace.as_millis()).unwrap_or(i64::MAX),
            loaded: Mutex::new(Loaded {
                set: Arc::new(set),
                modified: None,
                checked: Instant::now(),
            }),
        }
    }

    /// The keys now: the key file is read again when it changed since it was last looked at
    /// (at most once a second). A file that no longer reads keeps the keys it had, with a
    /// warning, so that a bad edit never stops deliveries.
    pub fn current(&self) -> Arc<KeySet> {
        let mut loaded = self.loaded.lock().expect("the key set lock is never poisoned");
        if let Source::File { path, secret_box } = &self.source {
            if loaded.checked.elapsed() >= FILE_CHECK_INTERVAL {
                loaded.checked = Instant::now();
                let modified = modified_time(path);
                if modified != loaded.modified {
                    match read_file(path, secret_box) {
                        Ok(set) => {
                            loaded.set = Arc::new(set);
                            loaded.modified = modified;
                        }
                        Err(err) => {
                            tracing::warn!(error = %format!("{err:#}"), "the webhook signing key file cannot be read again; signing with the keys read before");
                        }
                    }
                }
            }
        }
        loaded.set.clone()
    }

    /// The JWKS published now.
    pub fn jwks(&self) -> Value {
        self.current().jwks(crate::store::now_ms(), self.grace_ms)
    }
}

/// What [`rotate_key_file`] added.
#[derive(Debug, Clone)]
pub struct RotatedKey {
    /// The new key's name.
    pub kid: String,
    /// When it starts signing.
    pub signs_from: DateTime<Utc>,
    /// How many keys the file holds now.
    pub keys: usize,
}

/// Adds the next signing key to the key file, signing `lead` after now (published at once),
/// and drops keys whose grace period is over. Running instances pick the change up by
/// themselves.
///
/// # Errors
/// Keys are configured (then rotation is a configuration change), or the file cannot be
/// read, opened or written.
pub fn rotate_key_file(settings: &Settings, lead: Duration) -> anyhow::Result<RotatedKey> {
    anyhow::ensure!(
        settings.integration.webhook.signing.keys.is_empty(),
        "integration.webhook.signing.keys is configured: rotate by adding a key with a later \
         `signs_from` there (`business-wallet signing-key generate` prints one)"
    );
    let path = settings.signing_key_file();
    let secret_box = SecretBox::from_settings(settings)?;
    let set = load_or_create_file(&path, &secret_box)?;
    let now = crate::store::now_ms();
    let grace_ms =
        i64::try_from(settings.integration.webhook.signing.grace_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let signs_from = Utc::now() + chrono::Duration::from_std(lead).context("the lead time is too long")?;
    let mut entries: Vec<KeyEntry> = set.published(now, grace_ms).into_iter().cloned().collect();
    let new = new_entry(signs_from.timestamp_millis());
    let kid = new.kid.clone();
    entries.push(new);
    let set = KeySet::new(entries);
    write_file(&path, &set, &secret_box, true)?;
    Ok(RotatedKey {
        kid,
        signs_from,
        keys: set.entries.len(),
    })
}

/// A new random key for `integration.webhook.signing.keys`: its TOML entry (private key
/// included) and its kid. It signs from `signs_from` (RFC 3339), by default one
/// `publish_lead_secs` from now.
///
/// # Errors
/// `signs_from` is not an RFC 3339 time.
pub fn generate_key_setting(settings: &Settings, signs_from: Option<&str>) -> anyhow::Result<(String, String)> {
    let signs_from_ms = match signs_from {
        Some(text) => parse_time(text).map_err(|e| anyhow::anyhow!(e))?,
        None => crate::store::now_ms().saturating_add(
            i64::try_from(
                settings
                    .integration
                    .webhook
                    .signing
                    .publish_lead_secs
                    .saturating_mul(1000),
            )
            .unwrap_or(0),
        ),
    };
    let entry = new_entry(signs_from_ms);
    let signs_from = DateTime::<Utc>::from_timestamp_millis(signs_from_ms).unwrap_or_default();
    let toml = format!(
        "{{ private_key = \"{}\", signs_from = \"{}\" }}",
        STANDARD.encode(entry.key.to_bytes()),
        signs_from.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    Ok((toml, entry.kid))
}

fn new_entry(signs_from_ms: i64) -> KeyEntry {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    KeyEntry {
        kid: webhook_verify::jwk_thumbprint(&key.verifying_key()),
        key,
        signs_from_ms,
    }
}

/// Checks a kid given in configuration or read from the key file.
fn check_kid(kid: &str) -> Result<(), String> {
    if kid.is_empty() || kid.len() > 64 || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!(
            "kid `{}` must be 1 to 64 letters, digits, `-` or `_`",
            kid.escape_default()
        ));
    }
    Ok(())
}

fn parse_time(text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("signs_from `{}` is not an RFC 3339 time ({e})", text.escape_default()))
}

fn configured_keys(settings: &Settings) -> anyhow::Result<KeySet> {
    let mut entries = Vec::new();
    for (i, setting) in settings.integration.webhook.signing.keys.iter().enumerate() {
        let fail = |message: String| anyhow::anyhow!("integration.webhook.signing.keys[{i}]: {message}");
        let seed: [u8; 32] = STANDARD
            .decode(setting.private_key.expose_secret().trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail("private_key must be the base64 of 32 bytes".into()))?;
        let key = SigningKey::from_bytes(&seed);
        let kid = match &setting.kid {
            Some(kid) => kid.clone(),
            None => webhook_verify::jwk_thumbprint(&key.verifying_key()),
        };
        check_kid(&kid).map_err(fail)?;
        let signs_from_ms = parse_time(&setting.signs_from).map_err(fail)?;
        if entries.iter().any(|e: &KeyEntry| e.kid == kid) {
            return Err(fail(format!("kid `{kid}` is used twice")));
        }
        entries.push(KeyEntry {
            kid,
            key,
            signs_from_ms,
        });
    }
    Ok(KeySet::new(entries))
}

fn modified_time(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read_file(path: &Path, secret_box: &SecretBox) -> anyhow::Result<KeySet> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: KeyFile =
        serde_json::from_str(&text).with_context(|| format!("{} is not a signing key file", path.display()))?;
    let mut entries = Vec::new();
    for stored in file.keys {
        let fail = |message: String| anyhow::anyhow!("{}: key `{}`: {message}", path.display(), stored.kid);
        check_kid(&stored.kid).map_err(fail)?;
        let sealed = STANDARD
            .decode(&stored.sealed_private_key)
            .map_err(|_| fail("sealedPrivateKey is not base64".into()))?;
        let seed: [u8; 32] = secret_box
            .decrypt(&sealed)
            .map_err(|e| fail(e.to_string()))?
            .try_into()
            .map_err(|_| fail("the private key is not 32 bytes".into()))?;
        entries.push(KeyEntry {
            signs_from_ms: parse_time(&stored.signs_from).map_err(fail)?,
            kid: stored.kid,
            key: SigningKey::from_bytes(&seed),
        });
    }
    Ok(KeySet::new(entries))
}

fn load_or_create_file(path: &Path, secret_box: &SecretBox) -> anyhow::Result<KeySet> {
    if path.exists() {
        return read_file(path, secret_box);
    }
    let set = KeySet::new(vec![new_entry(crate::store::now_ms())]);
    match write_file(path, &set, secret_box, false) {
        Ok(()) => Ok(set),
        // Another process created it first: use theirs.
        Err(_) if path.exists() => read_file(path, secret_box),
        Err(err) => Err(err),
    }
}

/// Writes the key file (mode 0600). A new file is created only if none exists; a replacement
/// is written beside it and renamed over it, so a reader never sees half a file.
fn write_file(path: &Path, set: &KeySet, secret_box: &SecretBox, replace: bool) -> anyhow::Result<()> {
    let file = KeyFile {
        keys: set
            .entries
            .iter()
            .map(|e| FileKey {
                kid: e.kid.clone(),
                signs_from: DateTime::<Utc>::from_timestamp_millis(e.signs_from_ms)
                    .unwrap_or_default()
                    .to_rfc3339_opts(SecondsFormat::Millis, true),
                sealed_private_key: STANDARD.encode(secret_box.encrypt(&e.key.to_bytes())),
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&file).expect("the key file is plain JSON");
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let target = if replace {
        path.with_extension("json.new")
    } else {
        path.to_path_buf()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut out = options
        .open(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", target.display()))?;
    if replace {
        std::fs::rename(&target, path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kid: &str, signs_from_ms: i64) -> KeyEntry {
        KeyEntry {
            kid: kid.into(),
            key: SigningKey::from_bytes(&[kid.len() as u8; 32]),
            signs_from_ms,
        }
    }

    fn kids(entries: Vec<&KeyEntry>) -> Vec<&str> {
        entries.into_iter().map(|e| e.kid.as_str()).collect()
    }

    #[test]
    fn a_new_key_is_published_before_it_signs_and_the_old_one_for_the_grace_period() {
        let set = KeySet::new(vec![entry("b", 1_000), entry("a", 0)]);
        let grace = 500;
        assert!(set.signer(-1).is_none());
        assert_eq!(set.signer(999).unwrap().kid, "a");
        assert_eq!(kids(set.published(999, grace)), ["a", "b"]);
        assert_eq!(set.signer(1_000).unwrap().kid, "b");
        assert_eq!(kids(set.published(1_499, grace)), ["a", "b"]);
        assert_eq!(kids(set.published(1_500, grace)), ["b"]);
        let jwks = set.jwks(1_500, grace);
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert_eq!(jwks["keys"][0]["kid"], "b");
    }

    #[test]
    fn the_key_file_is_generated_private_sealed_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        settings.integration.webhook.signing.grace_secs = 3600;
        let keys = SigningKeys::from_settings(&settings).unwrap();
        let first = keys.current().signer(crate::store::now_ms()).unwrap().kid.clone();
        let path = settings.signing_key_file();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&first) && text.contains("sealedPrivateKey"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let rotated = rotate_key_file(&settings, Duration::from_secs(60)).unwrap();
        assert_eq!(rotated.keys, 2);
        let reread = SigningKeys::from_settings(&settings).unwrap();
        let now = crate::store::now_ms();
        assert_eq!(reread.current().signer(now).unwrap().kid, first, "the new key waits");
        let published = reread.jwks();
        let published: Vec<&str> = published["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(published, [first.as_str(), rotated.kid.as_str()]);
        // Another encryption key cannot open the file.
        settings.secrets.encryption_key = Some(STANDARD.encode([9u8; 32]).into());
        assert!(SigningKeys::from_settings(&settings).is_err());
    }

    #[test]
    fn configured_keys_are_checked_and_named_by_index() {
        let mut settings = Settings::default();
        let (toml, kid) = generate_key_setting(&settings, Some("2026-01-01T00:00:00Z")).unwrap();
        assert!(toml.ends_with("signs_from = \"2026-01-01T00:00:00Z\" }"), "{toml}");
        let private_key = toml.split('"').nth(1).unwrap().to_string();
        settings.integration.webhook.signing.keys = vec![crate::config::SigningKeySetting {
            kid: None,
            private_key: private_key.clone().into(),
            signs_from: "2026-01-01T00:00:00Z".into(),
        }];
        let keys = SigningKeys::from_settings(&settings).unwrap();
        assert_eq!(keys.current().signer(crate::store::now_ms()).unwrap().kid, kid);
        settings.integration.webhook.signing.keys[0].signs_from = "yesterday".into();
        let err = SigningKeys::from_settings(&settings).unwrap_err().to_string();
        assert!(
            err.starts_with("integration.webhook.signing.keys[0]: signs_from"),
            "{err}"
        );
        settings.integration.webhook.signing.keys[0].signs_from = "2026-01-01T00:00:00Z".into();
        settings.integration.webhook.signing.keys[0].private_key = "c2hvcnQ=".to_string().into();
        let err = SigningKeys::from_settings(&settings).unwrap_err().to_string();
        assert!(err.contains("private_key"), "{err}");
        assert!(rotate_key_file(&settings, Duration::from_secs(1)).is_err());
    }
}
