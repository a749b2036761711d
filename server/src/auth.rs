//! HTTP Basic authentication against a users file, and per-directory access rules.
//!
//! **Users file** (`--users FILE`): one user per line, `name:hash[:role,role,...]`, where
//! `hash` is an Argon2 PHC string as printed by `hdfstream serve --hash-password` (or
//! [`hash_password`]), e.g. `alice:$argon2id$v=19$m=19456,t=2,p=1$...$...:restricted-access`.
//! Empty lines and lines starting with `#` are ignored. Names may not contain `:` or
//! whitespace.
//!
//! **Access file** (`--access FILE`): one rule per line, `dir_prefix role[,role,...]`. A
//! virtual path needs every role of every rule whose prefix is one of its ancestors (or the
//! path itself), compared segment by segment; so roles are inherited by subdirectories and
//! several rules add up. Directories a caller may not enter are hidden from listings, sizes
//! and tar downloads; direct requests get 401 (anonymous) or 403 (authenticated, roles
//! missing), as in PROTOCOL.md §7.5.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

use crate::error::ServerError;

/// Hash a password into the Argon2id PHC string the users file expects.
pub fn hash_password(password: &str) -> Result<String, ServerError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServerError::PasswordHash {
            detail: e.to_string(),
        })
}

/// A hash of a random password with the default parameters, checked against for unknown
/// user names (made once).
fn dummy_hash() -> Option<&'static str> {
    static HASH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut secret = [0u8; 16];
        OsRng.fill_bytes(&mut secret);
        let text: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&text).ok()
    })
    .as_deref()
}

/// Who is making a request: anonymous, or an authenticated user with roles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    user: Option<String>,
    roles: BTreeSet<String>,
}

impl Identity {
    /// The anonymous caller (no roles).
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The authenticated user name, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }
}

struct UserEntry {
    hash: String,
    roles: BTreeSet<String>,
}

/// Most verified credentials remembered (so Argon2 runs once per client, not per request).
const CREDENTIAL_CACHE_SIZE: usize = 4096;

/// The users that may authenticate, loaded from a users file.
pub struct Users {
    entries: HashMap<String, UserEntry>,
    /// Random key mixed into the cache digests so they are useless outside this process.
    cache_key: [u8; 32],
    /// Digest of (key, user, password) → identity, for credentials already verified.
    verified: Mutex<HashMap<[u8; 32], Identity>>,
    /// Argon2 verifications made so far.
    checks: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.entries.keys().collect();
        names.sort();
        f.debug_struct("Users")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

/// Reads a users or access-rules file as text.
fn read_config(path: &Path) -> Result<String, ServerError> {
    std::fs::read_to_string(path).map_err(|source| ServerError::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

/// The trimmed lines of a users or access-rules file with their 1-based numbers, without
/// blank lines and `#` comments.
fn config_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, raw)| (index + 1, raw.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

impl Users {
    /// Read and validate a users file.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        Self::parse(&read_config(path)?, path)
    }

    /// Parse users-file text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ServerError> {
        let mut entries = HashMap::new();
        for (number, line) in config_lines(text) {
            let bad = |reason| ServerError::UsersFile {
                path: path.to_path_buf(),
                line: number,
                reason,
            };
            let mut parts = line.splitn(3, ':');
            let name = parts.next().unwrap_or_default();
            let hash = parts
                .next()
                .ok_or_else(|| bad("expected name:hash[:roles]"))?;
            let roles = parts.next().unwrap_or_default();
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return Err(bad("empty user name or name with whitespace"));
            }
            if PasswordHash::new(hash).is_err() {
                return Err(bad("the hash is not an Argon2 PHC string"));
            }
            let roles = roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
            let entry = UserEntry {
                hash: hash.to_owned(),
                roles,
            };
            if entries.insert(name.to_owned(), entry).is_some() {
                return Err(bad("user listed twice"));
            }
        }
        let mut cache_key = [0u8; 32];
        OsRng.fill_bytes(&mut cache_key);
        Ok(Self {
            entries,
            cache_key,
            verified: Mutex::new(HashMap::new()),
            checks: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file listed no user.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Argon2 verifications made so far: one per [`Users::verify`] that missed the cache,
    /// whether the user name exists or not.
    pub fn password_checks(&self) -> u64 {
        self.checks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One Argon2 verification of `password` against the PHC string `hash`.
    fn check(&self, password: &str, hash: &str) -> bool {
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    }

    /// Check a user name and password; `None` when either is wrong.
    ///
    /// Slow (Argon2) the first time a pair is seen, then answered from a cache keyed by a
    /// keyed digest, so the password itself is never stored. Call from a blocking context.
    pub fn verify(&self, name: &str, password: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(self.cache_key)
            .chain_update((name.len() as u64).to_le_bytes())
            .chain_update(name.as_bytes())
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        if let Ok(cache) = self.verified.lock()
            && let Some(identity) = cache.get(&digest)
        {
            return Some(identity.clone());
        }
        let Some(entry) = self.entries.get(name) else {
            // The same work as a known user with a wrong password (a hash made the same
            // way), so that the answer's time does not tell whether a user name exists.
            if let Some(dummy) = dummy_hash() {
                let _ = self.check(password, dummy);
            }
            return None;
        };
        if !self.check(password, &entry.hash) {
            return None;
        }
        let identity = Identity {
            user: Some(name.to_owned()),
            roles: entry.roles.clone(),
        };
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= CREDENTIAL_CACHE_SIZE {
                cache.clear();
            }
            cache.insert(digest, identity.clone());
        }
        Some(identity)
    }
}

/// Outcome of an access check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The caller may see the path.
    Allowed,
    /// Anonymous caller on a path that needs roles (HTTP 401).
    Unauthenticated,
    /// Authenticated caller lacking a role (HTTP 403).
    Forbidden,
}

/// Per-directory role requirements, loaded from an access file.
#[derive(Clone, Debug, Default)]
pub struct AccessRules {
    rules: Vec<(Vec<String>, Vec<String>)>,
}

impl AccessRules {
    /// Read and validate an access rules file.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        Self::parse(&read_config(path)?, path)
    }

    /// Parse access-file text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ServerError> {
        let mut rules = Vec::new();
        for (number, line) in config_lines(text) {
            let bad = |reason| ServerError::AccessFile {
                path: path.to_path_buf(),
                line: number,
                reason,
            };
            let mut fields = line.split_whitespace();
            let (Some(prefix), Some(roles), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected `dir_prefix role[,role...]`"));
            };
            let segments: Vec<String> = prefix
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if segments.iter().any(|s| s == "." || s == "..") {
                return Err(bad("'.' and '..' are not allowed in a prefix"));
            }
            let roles: Vec<String> = roles
                .split(',')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
            if roles.is_empty() {
                return Err(bad("no role given"));
            }
            rules.push((segments, roles));
        }
        Ok(Self { rules })
    }

    /// Whether any rule exists.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// May `who` see the virtual path made of `segments`?
    pub fn check<S: AsRef<str>>(&self, segments: &[S], who: &Identity) -> Access {
        let applies = |prefix: &[String]| {
            prefix.len() <= segments.len()
                && prefix
                    .iter()
                    .zip(segments)
                    .all(|(p, s)| p.as_str() == s.as_ref())
        };
        let missing = self
            .rules
            .iter()
            .filter(|(prefix, _)| applies(prefix))
            .flat_map(|(_, roles)| roles)
            .any(|role| !who.has_role(role));
        match (missing, who.user.is_some()) {
            (false, _) => Access::Allowed,
            (true, false) => Access::Unauthenticated,
            (true, true) => Access::Forbidden,
        }
    }
}
