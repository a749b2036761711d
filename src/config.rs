//! Server aliases from the user's configuration file (PROTOCOL.md §9.2).
//!
//! The file is YAML in the same format as the Python client's:
//!
//! ```yaml
//! aliases:
//!   cosma:
//!     url: https://dataweb.cosma.dur.ac.uk:8443/hdfstream
//!     use_keyring: false
//!     user: null
//! ```
//!
//! It lives at `$XDG_CONFIG_HOME/hdfstream/config.yml` (default `~/.config/hdfstream/config.yml`)
//! on Linux and at the platform's config directory elsewhere. Reading never writes;
//! [`Config::load_or_create`] writes the default file only when none exists.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the alias written into a new configuration file.
pub const DEFAULT_ALIAS: &str = "cosma";
/// URL of the [`DEFAULT_ALIAS`] server.
pub const DEFAULT_ALIAS_URL: &str = "https://dataweb.cosma.dur.ac.uk:8443/hdfstream";

/// One named server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// Server base URL, e.g. `https://host:8443/hdfstream`.
    pub url: String,
    /// Whether the Python client looks the password up in the system keyring
    /// (kept for compatibility; this crate does not read keyrings).
    #[serde(default)]
    pub use_keyring: bool,
    /// Default user name for this server.
    #[serde(default)]
    pub user: Option<String>,
}

/// Contents of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Aliases by name.
    pub aliases: BTreeMap<String, Alias>,
}

/// A server argument after alias resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedServer {
    /// Server base URL without trailing slash.
    pub url: String,
    /// User name from the alias, if any.
    pub user: Option<String>,
    /// The alias's `use_keyring` flag (false for plain URLs).
    pub use_keyring: bool,
    /// Name of the alias that matched, if any.
    pub alias: Option<String>,
}

impl Default for Config {
    /// The configuration written when no file exists: the `cosma` alias only.
    fn default() -> Self {
        let mut aliases = BTreeMap::new();
        aliases.insert(
            DEFAULT_ALIAS.to_string(),
            Alias {
                url: DEFAULT_ALIAS_URL.to_string(),
                use_keyring: false,
                user: None,
            },
        );
        Config { aliases }
    }
}

impl Config {
    /// Default location of the configuration file, `None` if the platform has no config dir.
    pub fn default_path() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("hdfstream").join("config.yml"))
    }

    /// Parses and validates YAML text.
    pub fn from_yaml_str(text: &str) -> Result<Config> {
        let config: Config = serde_yaml_ng::from_str(text).map_err(|e| Error::Config {
            reason: format!("invalid config file: {e}"),
            path: None,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Serialises to YAML in the Python client's layout (alias keys sorted).
    pub fn to_yaml_string(&self) -> Result<String> {
        serde_yaml_ng::to_string(self)
            .map_err(|e| Error::config(format!("cannot serialise config: {e}")))
    }

    /// Reads and validates the file at `path`; a missing file is an error.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            reason: format!("cannot read config file: {e}"),
            path: Some(path.to_path_buf()),
        })?;
        Self::from_yaml_str(&text).map_err(|e| match e {
            Error::Config { reason, .. } => Error::Config {
                reason,
                path: Some(path.to_path_buf()),
            },
            other => other,
        })
    }

    /// Reads the file at `path`, first creating it (and its directory) with
    /// [`Config::default`] if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Config> {
        if !path.exists() {
            let config = Config::default();
            if let Err(e) = config.write_new(path) {
                // Another process may have created it meanwhile; fall through to reading.
                if !path.exists() {
                    return Err(e);
                }
            } else {
                tracing::info!(path = %path.display(), "wrote default hdfstream config");
                return Ok(config);
            }
        }
        Self::load(path)
    }

    /// Writes this configuration to a file that must not exist yet.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        let err = |reason: String| Error::Config {
            reason,
            path: Some(path.to_path_buf()),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("cannot create config directory: {e}")))?;
        }
        let text = self.to_yaml_string()?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| err(format!("cannot create config file: {e}")))?;
        file.write_all(text.as_bytes())
            .map_err(|e| err(format!("cannot write config file: {e}")))
    }

    /// Checks every alias: non-empty name, `http(s)://` URL.
    pub fn validate(&self) -> Result<()> {
        for (name, alias) in &self.aliases {
            if name.is_empty() {
                return Err(Error::config("alias names must not be empty"));
            }
            if !is_http_url(&alias.url) {
                return Err(Error::config(format!(
                    "alias {name:?}: url {:?} must start with http:// or https://",
                    alias.url
                )));
            }
            if alias.user.as_deref() == Some("") {
                return Err(Error::config(format!(
                    "alias {name:?}: user must not be empty"
                )));
            }
        }
        Ok(())
    }

    /// Resolves a server argument: an alias name gives its URL and user, anything else
    /// must be an `http(s)://` URL.
    pub fn resolve(&self, server: &str) -> Result<ResolvedServer> {
        if let Some(alias) = self.aliases.get(server) {
            return Ok(ResolvedServer {
                url: alias.url.trim_end_matches('/').to_string(),
                user: alias.user.clone(),
                use_keyring: alias.use_keyring,
                alias: Some(server.to_string()),
            });
        }
        if is_http_url(server) {
            return Ok(ResolvedServer {
                url: server.trim_end_matches('/').to_string(),
                user: None,
                use_keyring: false,
                alias: None,
            });
        }
        let known: Vec<&str> = self.aliases.keys().map(String::as_str).collect();
        Err(Error::config(format!(
            "{server:?} is neither an http(s) URL nor a known alias (known: {})",
            known.join(", ")
        )))
    }
}

/// Whether `s` looks like an absolute HTTP(S) URL with a host.
pub(crate) fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/'))
}
