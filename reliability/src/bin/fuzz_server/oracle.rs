//! Whether a request is valid, decided without the server: the target is parsed by RFC 3986
//! and the protocol's path rules (PROTOCOL.md §1), parameters by the protocol crate's
//! validation (`decode_body`, `from_query`, `SliceSpec::check_against`), paths against the
//! namespace the fuzzer built, objects against libhdf5 reading the same files.

use hdfstream_protocol::ObjectRequest;

use crate::request::Plan;
use crate::site::{Access, Kind, Object, Site, USERS};

/// What the server may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A valid request: 2xx.
    Valid,
    /// An invalid one: 4xx.
    Invalid,
    /// Where HTTP leaves the choice to the server (lenient parsing): 2xx or 4xx.
    Either,
}

impl Verdict {
    /// Both parts together: invalid if either is, else undecided if either is.
    pub(crate) fn and(self, other: Verdict) -> Verdict {
        use Verdict::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Either, _) | (_, Either) => Either,
            (Valid, Valid) => Valid,
        }
    }
}

/// The reason given for credentials the server must refuse.
pub(crate) const REFUSED_CREDENTIALS: &str = "wrong credentials";
/// The maximum path length of the protocol (bytes of the encoded virtual path).
const MAX_PATH_LEN: usize = 4096;
/// The media type POST bodies must declare, exactly.
const MSGPACK: &[u8] = b"application/x-msgpack";

/// Bytes RFC 3986 allows unencoded in a path segment (`pchar` without `%`).
fn pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// Bytes RFC 3986 allows unencoded in a query.
pub(crate) fn query_char(b: u8) -> bool {
    pchar(b) || b == b'/' || b == b'?'
}

/// The first header called `name` (case-insensitive), value trimmed of SP and HTAB as the
/// HTTP field syntax says; and whether there were several.
fn header<'a>(plan: &'a Plan, name: &str) -> (Option<&'a [u8]>, bool) {
    let mut found = plan
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| trim_ows(v));
    let first = found.next();
    (first, found.next().is_some())
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &v[s..=e],
        _ => &[],
    }
}

/// Who the Authorization header says the caller is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Anonymous,
    /// Index into [`USERS`].
    User(usize),
    /// Credentials the server must refuse.
    Refused,
}

fn caller(value: Option<&[u8]>) -> Caller {
    use base64::Engine;
    let Some(value) = value else {
        return Caller::Anonymous;
    };
    // Visible ASCII only (what a header value as text allows).
    if !value
        .iter()
        .all(|b| (0x20..0x7f).contains(b) || *b == b'\t')
    {
        return Caller::Refused;
    }
    let text = String::from_utf8_lossy(value);
    let Some((scheme, token)) = text.split_once(' ') else {
        return Caller::Refused;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Caller::Refused;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
        return Caller::Refused;
    };
    let Ok(pair) = String::from_utf8(decoded) else {
        return Caller::Refused;
    };
    USERS
        .iter()
        .position(|(name, password, _)| pair == format!("{name}:{password}"))
        .map_or(Caller::Refused, Caller::User)
}

/// Percent-decode a segment. Escapes that are not `%XX` are kept literally and reported
/// (RFC 3986 forbids them; servers may refuse them or take them literally).
fn percent_decode(raw: &[u8]) -> (Vec<u8>, bool) {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut malformed = false;
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            if let (Some(h), Some(l)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            malformed = true;
        }
        out.push(raw[i]);
        i += 1;
    }
    (out, malformed)
}

/// The decoded segments of a virtual path (PROTOCOL.md §1 and the server's hardening: one
/// trailing slash allowed, no empty, `.`-leading, `/`, `\` or NUL-holding segments, valid
/// UTF-8, at most 4096 bytes).
fn segments(raw: &[u8]) -> Result<(Vec<String>, bool), &'static str> {
    let trimmed = raw.strip_suffix(b"/").unwrap_or(raw);
    if trimmed.is_empty() {
        return Ok((Vec::new(), false));
    }
    if raw.len() > MAX_PATH_LEN {
        return Err("path too long");
    }
    let mut lenient = false;
    let mut out = Vec::new();
    for seg in trimmed.split(|&b| b == b'/') {
        let (bytes, malformed) = percent_decode(seg);
        lenient |= malformed;
        let text = String::from_utf8(bytes).map_err(|_| "segment not UTF-8")?;
        if text.is_empty() || text.starts_with('.') || text.contains(['/', '\\', '\0']) {
            return Err("forbidden segment");
        }
        out.push(text);
    }
    Ok((out, lenient))
}

/// The verdict on `plan`, with the reason.
pub(crate) fn judge(site: &Site, base_path: &str, plan: &Plan) -> (Verdict, &'static str) {
    if plan.http_only {
        return (plan.http, plan.http_why);
    }
    match (plan.http, semantic(site, base_path, plan)) {
        (Verdict::Invalid, _) | (Verdict::Either, (Verdict::Valid, _)) => {
            (plan.http.and(Verdict::Either), plan.http_why)
        }
        (http, (verdict, why)) => (http.and(verdict), why),
    }
}

fn semantic(site: &Site, base_path: &str, plan: &Plan) -> (Verdict, &'static str) {
    use Verdict::*;
    let method = plan.method.as_slice();
    if !matches!(method, b"GET" | b"HEAD" | b"POST") {
        return (Invalid, "method not allowed");
    }
    let mut verdict = Valid;
    let mut target = plan.target.as_slice();
    // The absolute form (`http://host/path`), which servers must accept.
    for scheme in [&b"http://"[..], b"https://"] {
        if let Some(rest) = target.strip_prefix(scheme) {
            let at = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
            target = &rest[at..];
        }
    }
    if !target.starts_with(b"/") {
        return (Invalid, "target is not a path");
    }
    if let Some(hash) = target.iter().position(|&b| b == b'#') {
        target = &target[..hash];
        verdict = Either;
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &b""[..]),
    };
    if !path.iter().all(|&b| pchar(b) || b == b'/' || b == b'%')
        || !query.iter().all(|&b| query_char(b) || b == b'%')
    {
        verdict = Either;
    }
    let base = base_path.as_bytes();
    let endpoint = |name: &[u8]| -> Option<&[u8]> {
        let rest = path
            .strip_prefix(base)?
            .strip_prefix(b"/")?
            .strip_prefix(name)?;
        match rest {
            [] => Some(rest),
            [b'/', tail @ ..] => Some(tail),
            _ => None,
        }
    };
    let (download, raw) = match (endpoint(b"msgpack"), endpoint(b"download")) {
        (Some(raw), _) => (false, raw),
        (None, Some(raw)) => (true, raw),
        (None, None) => {
            // Dot segments or escapes a normalising server might route; others are unknown.
            let odd = path.windows(2).any(|w| w == b"/." || w == b"//") || path.contains(&b'%');
            return (if odd { Either } else { Invalid }, "no such endpoint");
        }
    };
    let (segs, lenient) = match segments(raw) {
        Ok(found) => found,
        Err(why) => return (Invalid, why),
    };
    if lenient {
        verdict = verdict.and(Either);
    }
    let (auth, several) = header(plan, "authorization");
    if several {
        verdict = verdict.and(Either);
    }
    let who = caller(auth);
    if who == Caller::Refused {
        return (Invalid, REFUSED_CREDENTIALS);
    }
    let Some((kind, access)) = site.resolve(&segs) else {
        return (Invalid, "no such path");
    };
    let allowed = match access {
        Access::Open => true,
        Access::Restricted => who == Caller::User(0),
        Access::Denied => false,
    };
    if !allowed {
        return (Invalid, "not allowed");
    }
    if download {
        if method == b"POST" {
            return (Invalid, "POST on download");
        }
        if segs.is_empty() {
            return (Invalid, "download of the root");
        }
        return (verdict, "download");
    }
    let params = if method == b"POST" {
        let (content_type, several) = header(plan, "content-type");
        if several {
            verdict = verdict.and(Either);
        }
        if content_type != Some(MSGPACK) {
            return (Invalid, "content type");
        }
        ObjectRequest::decode_body(plan.effective_body())
    } else {
        let Ok(query) = std::str::from_utf8(query) else {
            return (verdict.and(Either), "query not UTF-8");
        };
        ObjectRequest::from_query(query)
    };
    let Ok(req) = params else {
        return (Invalid, "parameters");
    };
    let (hdf5, h5_name) = match kind {
        Kind::Dir => return (verdict, "listing"),
        Kind::Alias(_) => return (Either, "alias"),
        Kind::File { .. } if req.object.is_none() => return (verdict, "file map"),
        Kind::File { hdf5, h5_name } => (hdf5, h5_name),
    };
    let (Some(file), true, Some(name)) = (hdf5, h5_name, req.object.as_deref()) else {
        return (Invalid, "object of a file that is not HDF5");
    };
    match (site.files[file].object(name), &req.slice) {
        (Object::Missing | Object::Other, _) => (Invalid, "no such object"),
        (Object::Group, Some(_)) => (Invalid, "slice of a group"),
        (Object::Group, None) => (verdict, "group"),
        (Object::Dataset(_), None) => (verdict, "dataset"),
        (Object::Dataset(shape), Some(slice)) => match slice.check_against(&shape) {
            Ok(()) => (verdict, "slice"),
            Err(_) => (Invalid, "slice outside the dataset"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_the_path_rules() {
        let ok = |raw: &str| segments(raw.as_bytes()).map(|(s, _)| s);
        assert_eq!(ok(""), Ok(vec![]));
        assert_eq!(ok("/"), Ok(vec![]));
        assert_eq!(ok("a/b/"), Ok(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(ok("d%C3%A9"), Ok(vec!["dé".to_owned()]));
        assert!(ok("a//b").is_err());
        assert!(ok("a/b//").is_err());
        assert!(ok("%2e%2e/x").is_err());
        assert!(ok("a%2Fb").is_err());
        assert!(ok("a%00").is_err());
        assert!(ok("%c0%ae").is_err());
        assert!(ok(".hidden").is_err());
        assert_eq!(segments(b"100%"), Ok((vec!["100%".to_owned()], true)));
    }

    #[test]
    fn credentials_are_recognised() {
        use base64::Engine;
        let token = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let basic = |s: &str| format!("Basic {}", token(s)).into_bytes();
        assert_eq!(caller(None), Caller::Anonymous);
        assert_eq!(caller(Some(&basic("alice:wonderland"))), Caller::User(0));
        assert_eq!(
            caller(Some(
                format!("bAsIc   {} ", token("bob:builder")).as_bytes()
            )),
            Caller::User(1)
        );
        assert_eq!(caller(Some(&basic("alice:wonder"))), Caller::Refused);
        assert_eq!(caller(Some(b"Bearer x")), Caller::Refused);
        assert_eq!(caller(Some(b"Basic")), Caller::Refused);
    }
}
