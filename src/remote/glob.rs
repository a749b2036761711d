//! File-name globs over a remote directory (`snapshot_028/snap_028.*.hdf5`), in natural order.

use std::cmp::Ordering;

use hdfstream_protocol::PathInfo;

use super::Backend;
use crate::{Error, Result};

/// True when `path` contains glob wildcards (`*` or `?`).
pub(crate) fn is_glob(path: &str) -> bool {
    path.contains(['*', '?'])
}

/// Shell-style match of a whole name: `*` any run of characters, `?` one character.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher that backtracks to the last `*`.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
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
/// Wildcards in directory components are an [`Error::InvalidPath`]; a glob that matches
/// nothing is an [`Error::NotFound`] whose message says so.
pub(crate) fn expand_files(backend: &dyn Backend, file_or_glob: &str) -> Result<Vec<String>> {
    let path = file_or_glob.trim_start_matches('/');
    if !is_glob(path) {
        return Ok(vec![path.to_string()]);
    }
    let (dir, pattern) = path.rsplit_once('/').unwrap_or(("", path));
    if is_glob(dir) {
        return Err(Error::InvalidPath {
            path: file_or_glob.to_string(),
            reason: "wildcards are only supported in the file name, not in directories".to_string(),
        });
    }
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
        .filter(|name| glob_match(pattern, name))
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

    #[test]
    fn glob_and_natural_order() {
        assert!(glob_match("snap_028.*.hdf5", "snap_028.10.hdf5"));
        assert!(glob_match("snap_??.hdf5", "snap_01.hdf5"));
        assert!(!glob_match("snap_??.hdf5", "snap_001.hdf5"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "acbd"));
        let mut names = vec!["s.10.h", "s.2.h", "s.1.h", "s.02.h"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, vec!["s.1.h", "s.02.h", "s.2.h", "s.10.h"]);
    }
}
