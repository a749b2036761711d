//! Table URLs: a server (base URL or alias) and a file path or glob in one string.

use crate::{Error, Result};

/// Server and path a scan URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Server base URL or alias.
    pub server: String,
    /// Virtual path of the file, or a glob over the files of a directory.
    pub path: String,
}

fn invalid(reason: String) -> Error {
    Error::Config { reason, path: None }
}

/// Decodes `%XX` escapes of a URL path (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits a scan URL into server and path. The accepted forms:
///
/// * `http(s)://host/base/msgpack/<path>`: the endpoint URL of a file (or glob);
/// * `http(s)://host/base` with the path in `file`;
/// * `alias:<path>`, or `alias` with the path in `file`.
pub fn parse_location(url: &str, file: Option<&str>) -> Result<Location> {
    let file = file
        .map(|f| f.trim_start_matches('/'))
        .filter(|f| !f.is_empty());
    let is_http = url.starts_with("http://") || url.starts_with("https://");
    let (server, path) = if is_http {
        match url.split_once("/msgpack/") {
            Some((base, p)) => (base.to_owned(), percent_decode(p.trim_start_matches('/'))),
            None => (url.trim_end_matches('/').to_owned(), String::new()),
        }
    } else {
        match url.split_once(':') {
            Some((alias, p)) => (alias.to_owned(), p.trim_start_matches('/').to_owned()),
            None => (url.to_owned(), String::new()),
        }
    };
    if server.is_empty() {
        return Err(invalid(format!("no server in scan URL `{url}`")));
    }
    let path = match (path.is_empty(), file) {
        (false, Some(f)) => {
            return Err(invalid(format!(
                "ambiguous scan: `{url}` already names the file `{path}`, and \
                 the file argument names `{f}`; give the file in only one place"
            )));
        }
        (false, None) => path,
        (true, Some(f)) => f.to_owned(),
        (true, None) => {
            return Err(invalid(format!(
                "`{url}` names a server but no file: use `<server>/msgpack/<file path>`, \
                 `alias:<file path>`, or give the file separately"
            )));
        }
    };
    Ok(Location { server, path })
}
