//! File-name globs over a remote directory (`snapshot_028/snap_028.*.hdf5`, `snap_[0-9].hdf5`),
//! matched with `glob::Pattern`, in natural order.

use std::cmp::Ordering;

use glob::{MatchOptions, Pattern};
use hdfstream_protocol::PathInfo;

use super::Backend;
use crate::{Error, Result};

/// How file names are matched: case-sensitive, `*` and `?` never match a `/`, and a leading
/// `.` needs no literal dot in the pattern (as the matcher before `glob` did).
const MATCH_OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// True when `path` is a glob: it contains `*` or `?`, or its file name contains `[` (a
/// character class such as `snap_[0-9].hdf5`; a literal `[` in a file name is written `[[]`).
/// A `[` in a directory name is taken literally, as directories cannot hold wildcards.
pub(crate) fn is_glob(path: &str) -> bool {
    let name = path.rsplit_once('/').map_or(path, |(_, name)| name);
    path.contains(['*', '?']) || name.contains('[')
}

/// Compiles the file-name part of a glob with `glob::Pattern`: `*` any run of characters,
/// `?` one character, `[...]` / `[!...]` a (negated) character class. `file_or_glob` is the
/// whole path the caller gave, for the error message.
fn compile(pattern: &str, file_or_glob: &str) -> Result<Pattern> {
    // `glob` only allows `**` as a whole path component; in a file name it means what `*`
    // does, so runs of stars are collapsed first (a doubled star inside a class is the same
    // class).
    let mut collapsed = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        if !(c == '*' && collapsed.ends_with('*')) {
            collapsed.push(c);
        }
    }
    Pattern::new(&collapsed).map_err(|e| {
        // The position counts characters of the collapsed pattern.
        let at = if collapsed == pattern {
            format!(" at character {}", e.pos + 1)
        } else {
            String::new()
        };
        Error::InvalidPath {
            path: file_or_glob.to_string(),
            reason: format!("invalid glob pattern `{pattern}`: {}{at}", e.msg),
        }
    })
}

/// Whether `name` (one file name) matches the compiled glob.
fn glob_matches(pattern: &Pattern, name: &str) -> bool {
    pattern.matches_with(name, MATCH_OPTIONS)
}

/// Natural order: runs of digits compare as numbers (`snap.2` before `snap.10`).
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a, b);
    loop {
        match (x.chars().next(), y.chars().next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(cx), Some(cy)) if cx.is_ascii_digit() && cy.is_ascii_digit() => {
                let lx = x.find(|c: char| !c.is_ascii_digit()).unwrap_or(x.len());
                let ly = y.find(|c: char| !c.is_ascii_digit()).unwrap_or(y.len());
                let (dx, rx) = x.split_at(lx);
                let (dy, ry) = y.split_at(ly);
                let (tx, ty) = (dx.trim_start_matches('0'), dy.trim_start_matches('0'));
                let o = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
                if o != Ordering::Equal {
                    return o;
                }
                x = rx;
                y = ry;
            }
            (Some(cx), Some(cy)) => {
                if cx != cy {
                    return cx.cmp(&cy);
                }
                x = x.get(cx.len_utf8()..).unwrap_or_default();
                y = y.get(cy.len_utf8()..).unwrap_or_default();
            }
        }
    }
}

/// Virtual paths of the files `file_or_glob` names: itself when it has no wildcard, else
/// the files of its directory whose names match, in natural order (one listing request).
///
/// Wildcards (`*`, `?`) in directory components and a malformed pattern (`snap_[.hdf5`) are
/// an [`Error::InvalidPath`], reported before any request; a glob that matches nothing is an
/// [`Error::NotFound`] whose message says so.
pub(crate) fn expand_files(backend: &dyn Backend, file_or_glob: &str) -> Result<Vec<String>> {
    let path = file_or_glob.trim_start_matches('/');
    if !is_glob(path) {
        return Ok(vec![path.to_string()]);
    }
    let (dir, pattern) = path.rsplit_once('/').unwrap_or(("", path));
    if dir.contains(['*', '?']) {
        return Err(Error::InvalidPath {
            path: file_or_glob.to_string(),
            reason: "wildcards are only supported in the file name, not in directories".to_string(),
        });
    }
    let matcher = compile(pattern, file_or_glob)?;
    let PathInfo::Directory(listing) = backend.request_path(dir)? else {
        return Err(Error::InvalidPath {
            path: file_or_glob.to_string(),
            reason: format!("`{dir}` is a file, not a directory"),
        });
    };
    let mut names: Vec<&String> = listing
        .files
        .iter()
        .map(|(name, _)| name)
        .filter(|name| glob_matches(&matcher, name))
        .collect();
    if names.is_empty() {
        return Err(Error::NotFound {
            path: file_or_glob.to_string(),
            message: format!("glob `{file_or_glob}` matches no file"),
        });
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    Ok(names
        .into_iter()
        .map(|name| {
            if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_match(pattern: &str, name: &str) -> bool {
        glob_matches(&compile(pattern, pattern).unwrap(), name)
    }

    #[test]
    fn glob_and_natural_order() {
        assert!(glob_match("snap_028.*.hdf5", "snap_028.10.hdf5"));
        assert!(glob_match("snap_??.hdf5", "snap_01.hdf5"));
        assert!(!glob_match("snap_??.hdf5", "snap_001.hdf5"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", ".hidden"));
        assert!(!glob_match("a*b", "acbd"));
        assert!(glob_match("a**b", "axyb"));
        assert!(glob_match("**", "anything.hdf5"));
        assert!(!glob_match("a*", "a/b"));
        assert!(!glob_match("a?b", "a/b"));
        assert!(!glob_match("Snap*", "snap_0"));
        let mut names = vec!["s.10.h", "s.2.h", "s.1.h", "s.02.h"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, vec!["s.1.h", "s.02.h", "s.2.h", "s.10.h"]);
    }

    #[test]
    fn character_classes() {
        assert!(glob_match("snap_[0-9].hdf5", "snap_7.hdf5"));
        assert!(!glob_match("snap_[0-9].hdf5", "snap_10.hdf5"));
        assert!(!glob_match("snap_[0-9].hdf5", "snap_x.hdf5"));
        assert!(glob_match("snap_[0-9][0-9].hdf5", "snap_10.hdf5"));
        assert!(glob_match("snap_[ab].hdf5", "snap_b.hdf5"));
        assert!(!glob_match("snap_[ab].hdf5", "snap_c.hdf5"));
        // Negated classes.
        assert!(glob_match("[!a]*", "b.hdf5"));
        assert!(!glob_match("[!a]*", "a.hdf5"));
        assert!(glob_match("snap_[!0-4].hdf5", "snap_5.hdf5"));
        assert!(!glob_match("snap_[!0-4].hdf5", "snap_3.hdf5"));
        // Literal metacharacters through one-character classes.
        assert!(glob_match("snap[[]1].hdf5", "snap[1].hdf5"));
        assert!(!glob_match("snap[[]1].hdf5", "snap1.hdf5"));
        assert!(glob_match("what[?].hdf5", "what?.hdf5"));
        assert!(!glob_match("what[?].hdf5", "whatx.hdf5"));
    }

    #[test]
    fn which_paths_are_globs() {
        assert!(is_glob("a/snap_*.hdf5"));
        assert!(is_glob("a/snap_?.hdf5"));
        assert!(is_glob("a/snap_[0-9].hdf5"));
        assert!(is_glob("a*/snap.hdf5"));
        assert!(!is_glob("run[1]/snap.hdf5"));
        assert!(!is_glob("a/snap_0.hdf5"));
    }

    #[test]
    fn invalid_patterns_are_errors() {
        for pattern in ["snap_[.hdf5", "snap_[!.hdf5", "snap_[]"] {
            let path = format!("dir/{pattern}");
            match compile(pattern, &path) {
                Err(Error::InvalidPath { path: p, reason }) => {
                    assert_eq!(p, path);
                    assert!(reason.contains(pattern), "{reason}");
                    let shown = Error::InvalidPath { path: p, reason }.to_string();
                    assert!(shown.contains(pattern), "{shown}");
                }
                other => panic!("{pattern}: {other:?}"),
            }
        }
    }
}
