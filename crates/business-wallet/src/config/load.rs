//! Loading: built-in defaults, then the TOML file, then `BW_` environment variables.

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

use super::{ConfigError, Settings, DEFAULT_CONFIG_FILE, ENV_PREFIX};

impl Settings {
    /// Loads settings from defaults, the TOML file (the given one, which must exist, or
    /// `business-wallet.toml` when present) and the process environment, then validates them.
    ///
    /// # Errors
    /// A file that does not parse, a value of the wrong type, an unknown key, or a value that
    /// fails validation; the error names the setting.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match config_file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Invalid {
                        setting: "--config",
                        message: format!("file {} does not exist", path.display()),
                    });
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                if Path::new(DEFAULT_CONFIG_FILE).exists() {
                    figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
                }
            }
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
// figment's test jail returns its own large error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::config::{Backend, DeploymentMode};

    #[test]
    fn the_documented_example_file_is_valid_and_says_the_defaults() {
        let example = include_str!("../../../../business-wallet.example.toml");
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(example))
            .extract()
            .unwrap();
        settings.validate().unwrap();
        let defaults = Settings::default();
        assert_eq!(
            serde_json::to_value(&settings).unwrap(),
            serde_json::to_value(&defaults).unwrap()
        );
    }

    #[test]
    fn toml_and_environment_are_layered() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "mode = \"saas\"\n[database]\nurl = \"postgres://localhost/x\"\n",
            )?;
            jail.set_env("BW_SERVER__LISTEN", "127.0.0.1:9999");
            let settings = Settings::load(Some(Path::new("custom.toml"))).unwrap();
            assert_eq!(settings.mode, DeploymentMode::Saas);
            assert_eq!(settings.backend(), Backend::Postgres);
            assert_eq!(settings.server.listen, "127.0.0.1:9999");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[server]\nbody_limit_bytes = \"lots\"\n")?;
            let err = Settings::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(err.contains("body_limit_bytes"), "{err}");
            jail.create_file("typo.toml", "[databse]\nurl = \"x\"\n")?;
            let err = Settings::load(Some(Path::new("typo.toml"))).unwrap_err().to_string();
            assert!(err.contains("databse"), "{err}");
            Ok(())
        });
    }
}
