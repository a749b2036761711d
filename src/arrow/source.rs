//! Resolving `FILE_OR_GLOB` + `GROUP` into the groups of a table, one per file, in order.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::remote::{Backend, Group, OpenOptions, open_with};
use crate::{Error, Result};

/// True when `path` holds glob wildcards (`*`, `?`).
pub(crate) fn is_glob(path: &str) -> bool {
    path.contains(['*', '?'])
}

/// Shell-style match of a whole file name: `*` any run of characters, `?` one character.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
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

/// Natural order: digit runs compare as numbers (`snap.2` before `snap.10`).
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
                let tx = dx.trim_start_matches('0');
                let ty = dy.trim_start_matches('0');
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

/// Virtual paths of the files `file_or_glob` names: itself, or the files of its directory
/// whose names match the glob, in natural order. A glob that matches nothing is an error.
pub(crate) fn expand(
    backend: &Arc<dyn Backend>,
    file_or_glob: &str,
    options: OpenOptions,
) -> Result<Vec<String>> {
    let path = file_or_glob.trim_start_matches('/');
    if !is_glob(path) {
        return Ok(vec![path.to_string()]);
    }
    let (dir, pattern) = path.rsplit_once('/').unwrap_or(("", path));
    if is_glob(dir) {
        return Err(Error::InvalidPath {
            path: file_or_glob.to_string(),
            reason: "wildcards are only supported in the file name".to_string(),
        });
    }
    let directory = open_with(Arc::clone(backend), dir, options)?.into_directory()?;
    let mut names: Vec<String> = directory
        .files()?
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| glob_match(pattern, name))
        .collect();
    if names.is_empty() {
        return Err(Error::NotFound {
            path: file_or_glob.to_string(),
            message: "no file matches the pattern".to_string(),
        });
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    Ok(names
        .into_iter()
        .map(|n| {
            if dir.is_empty() {
                n
            } else {
                format!("{dir}/{n}")
            }
        })
        .collect())
}

/// Opens `group` in every file `file_or_glob` names.
pub(crate) fn open_groups(
    backend: &Arc<dyn Backend>,
    file_or_glob: &str,
    group: &str,
    options: OpenOptions,
) -> Result<Vec<Arc<Group>>> {
    expand(backend, file_or_glob, options)?
        .iter()
        .map(|f| {
            open_with(Arc::clone(backend), f, options)?
                .into_file()?
                .group(group)
        })
        .collect()
}
