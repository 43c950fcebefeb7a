//! The settings loader (`Settings::load`): a TOML file and `BW_` environment variables, layered
//! over the defaults and validated.
//!
//! Input: the TOML text, then optionally a line `#env` followed by `NAME=value` lines (`BW_` is
//! put in front of names that lack it).
//!
//! Checked: loaded settings are valid, and loading the TOML form of them gives them back
//! unchanged; every refusal names the setting: a validation error names a setting that
//! exists, and a parse error about a key says which key.
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use business_wallet::config::{ConfigError, Settings, ENV_PREFIX};
use business_wallet_fuzz::split_line;
use libfuzzer_sys::fuzz_target;

struct Files {
    _dir: tempfile::TempDir,
    input: PathBuf,
    reloaded: PathBuf,
}

fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        // Only the input's variables may reach the loader.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with(ENV_PREFIX) {
                std::env::remove_var(name);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        // The working directory's business-wallet.toml is read only without --config; the
        // loader is always given a file here.
        Files {
            input: dir.path().join("input.toml"),
            reloaded: dir.path().join("reloaded.toml"),
            _dir: dir,
        }
    })
}

fn write(path: &PathBuf, bytes: &[u8]) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(bytes).unwrap();
}

fuzz_target!(|data: &[u8]| {
    let files = files();
    let (toml, env) = match find_env_marker(data) {
        Some((toml, env)) => (toml, env),
        None => (data, &[][..]),
    };
    let mut variables = Vec::new();
    let mut rest = env;
    while !rest.is_empty() && variables.len() < 16 {
        let (line, after) = split_line(rest);
        rest = after;
        let Ok(line) = std::str::from_utf8(line) else { continue };
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = if name.starts_with(ENV_PREFIX) {
            name.to_string()
        } else {
            format!("{ENV_PREFIX}{name}")
        };
        // What a process environment cannot hold.
        if name.contains(['=', '\0']) || value.contains('\0') {
            continue;
        }
        variables.push((name, value.to_string()));
    }

    write(&files.input, toml);
    for (name, value) in &variables {
        std::env::set_var(name, value);
    }
    let loaded = Settings::load(Some(&files.input));
    for (name, _) in &variables {
        std::env::remove_var(name);
    }

    match loaded {
        Ok(settings) => {
            settings.validate().expect("loaded settings are valid");
            let value = serde_json::to_value(&settings).unwrap();
            // TOML has no integers above i64::MAX; such values only come from the environment.
            let Ok(text) = toml::to_string(&settings) else { return };
            write(&files.reloaded, text.as_bytes());
            let reloaded = Settings::load(Some(&files.reloaded))
                .unwrap_or_else(|e| panic!("the TOML form of loaded settings does not load: {e}\n{text}"));
            assert_eq!(serde_json::to_value(&reloaded).unwrap(), value, "{text}");
        }
        Err(ConfigError::Invalid { setting, message }) => {
            assert!(!message.is_empty());
            let defaults = serde_json::to_value(Settings::default()).unwrap();
            let exists = setting
                .split('.')
                .try_fold(&defaults, |node, part| node.get(part))
                .is_some();
            assert!(exists, "the error names `{setting}`, which is not a setting");
            let shown = ConfigError::Invalid { setting, message }.to_string();
            assert!(shown.contains(setting), "{shown}");
        }
        Err(ConfigError::Load(err)) => {
            let shown = err.to_string();
            assert!(!shown.is_empty());
            if let (Some(key), Some(_)) = (err.path.last(), &err.metadata) {
                assert!(
                    shown.to_ascii_lowercase().contains(&key.to_ascii_lowercase()),
                    "the error does not name the key {key:?}: {shown}"
                );
            }
        }
    }
});

/// Splits the input at a line `#env`: the TOML before it, the variables after it.
fn find_env_marker(data: &[u8]) -> Option<(&[u8], &[u8])> {
    const MARKER: &[u8] = b"#env\n";
    if data.starts_with(MARKER) {
        return Some((&[], &data[MARKER.len()..]));
    }
    let at = data
        .windows(MARKER.len() + 1)
        .position(|w| w[0] == b'\n' && &w[1..] == MARKER)?;
    Some((&data[..at + 1], &data[at + 1 + MARKER.len()..]))
}
