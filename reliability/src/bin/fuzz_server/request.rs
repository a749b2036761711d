//! Requests: a valid base request (a listing, a file map, an object map, a slice or a
//! download, as a client would send it), then the mutations of one category (see
//! [`CATEGORIES`]), then the bytes on the wire. Request `i` of a run comes from its own
//! generator seeded with (seed, i), so any request can be shown again with `--show i`.

use hdfstream_protocol::{DimSelection, SliceSpec};
use hdfstream_reliability::Rng;

use crate::msgpack::Mp;
use crate::mutate;
use crate::oracle::Verdict;
use crate::site::{Kind, Object, Site, USERS};

/// Which connection a request goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// The worker's keep-alive connection.
    Keep,
    /// A connection of its own, closed after the request; `half_close`: the sending side is
    /// shut right after the request (the server sees its end).
    Fresh { half_close: bool },
    /// The keep-alive connection from the second source address, for wrong credentials
    /// (whose rate limit would otherwise block the right ones).
    Abuse,
}

/// A request, ready to send, with what the oracle needs to judge it.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Generator category.
    pub(crate) category: &'static str,
    pub(crate) method: Vec<u8>,
    /// The request target as sent.
    pub(crate) target: Vec<u8>,
    /// Header fields as sent (framing headers added on the wire are not listed).
    pub(crate) headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body as the server reads it.
    pub(crate) body: Vec<u8>,
    /// The HTTP layer's verdict (framing and syntax), decided by the mutation that made it.
    pub(crate) http: Verdict,
    pub(crate) http_why: &'static str,
    /// 5xx statuses HTTP prescribes for this request (501 for an unknown transfer coding,
    /// 505 for an unsupported version), accepted in place of a 4xx.
    pub(crate) also_ok: &'static [u16],
    /// Whether closing the connection without a response is acceptable (the request is not
    /// complete HTTP/1.x, e.g. cut short or binary garbage).
    pub(crate) allow_close: bool,
    pub(crate) lane: Lane,
    /// A HEAD request (the reply has no body).
    pub(crate) head: bool,
    /// The bytes sent.
    pub(crate) wire: Vec<u8>,
    /// The wire is not a request the oracle can read (garbage, a request cut short): the
    /// HTTP verdict alone decides.
    pub(crate) http_only: bool,
    /// The server closes the connection after the answer (Connection: close, HTTP/1.0).
    pub(crate) closes: bool,
}

impl Plan {
    /// The body the server reads.
    pub(crate) fn effective_body(&self) -> &[u8] {
        &self.body
    }
}

/// What the generator knows about the site and the server.
pub(crate) struct Ctx<'a> {
    pub(crate) site: &'a Site,
    /// `host:port` of the server.
    pub(crate) host: String,
    /// The base path, e.g. `/hdfstream`.
    pub(crate) base: String,
    /// Visible directories.
    dirs: Vec<Vec<String>>,
    /// Visible files that are not HDF5.
    plain_files: Vec<Vec<String>>,
    /// Visible HDF5 files with the index of their truth.
    hdf5: Vec<(Vec<String>, usize)>,
    /// Every known path, visible or not.
    all: Vec<Vec<String>>,
}

impl<'a> Ctx<'a> {
    /// The context for `site` served at `host` under `base`.
    pub(crate) fn new(site: &'a Site, host: String, base: String) -> Self {
        let mut ctx = Ctx {
            site,
            host,
            base,
            dirs: Vec::new(),
            plain_files: Vec::new(),
            hdf5: Vec::new(),
            all: site.paths.clone(),
        };
        for path in &site.paths {
            match site.resolve(path) {
                Some((Kind::Dir, _)) => ctx.dirs.push(path.clone()),
                Some((Kind::File { hdf5: Some(i), .. }, _)) => ctx.hdf5.push((path.clone(), i)),
                Some((Kind::File { hdf5: None, .. }, _)) => ctx.plain_files.push(path.clone()),
                _ => {}
            }
        }
        ctx
    }

    /// The `Authorization` value of user `i` of [`USERS`].
    pub(crate) fn credentials(&self, i: usize) -> Vec<u8> {
        use base64::Engine;
        let (name, password, _) = USERS[i];
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        format!("Basic {token}").into_bytes()
    }
}

/// A request under construction.
#[derive(Clone, Debug)]
pub(crate) struct Draft {
    pub(crate) method: Vec<u8>,
    pub(crate) version: Vec<u8>,
    /// Base path and endpoint, e.g. `/hdfstream/msgpack`.
    pub(crate) prefix: Vec<u8>,
    /// Encoded path segments after the endpoint.
    pub(crate) segments: Vec<Vec<u8>>,
    pub(crate) trailing_slash: bool,
    /// The encoded query (without `?`), if any.
    pub(crate) query: Option<Vec<u8>>,
    /// Query parameters, encoded into `query` when the draft is finished (if set).
    pub(crate) params: Option<Vec<(String, String)>>,
    /// The body as a tree (encoded when the draft is finished, if set).
    pub(crate) tree: Option<Mp>,
    pub(crate) body: Vec<u8>,
    pub(crate) headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes sent after the head instead of `body` with a Content-Length (framing
    /// mutations; the framing headers are then in `headers`).
    pub(crate) wire_body: Option<Vec<u8>>,
    /// The whole request as sent (syntax mutations), replacing everything else on the wire.
    pub(crate) raw: Option<Vec<u8>>,
    pub(crate) line_end: &'static [u8],
    pub(crate) http: Verdict,
    pub(crate) http_why: &'static str,
    pub(crate) also_ok: &'static [u16],
    pub(crate) allow_close: bool,
    pub(crate) lane: Lane,
    /// The HDF5 file the request is about (index of its truth), for object mutations.
    pub(crate) file: Option<usize>,
}

impl Draft {
    /// The HTTP layer may refuse this request (`verdict`, `why`); such requests get a
    /// connection of their own since the server closes it after a parse error.
    pub(crate) fn http_verdict(&mut self, verdict: Verdict, why: &'static str) {
        if verdict != Verdict::Valid {
            self.http = self.http.and(verdict);
            self.http_why = why;
            if self.lane == Lane::Keep || self.lane == Lane::Abuse {
                self.lane = Lane::Fresh { half_close: false };
            }
        }
    }

    /// Set header `name` (replacing any), or remove it with `None`.
    pub(crate) fn set_header(&mut self, name: &str, value: Option<Vec<u8>>) {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
        if let Some(value) = value {
            self.headers.push((name.as_bytes().to_vec(), value));
        }
    }
}

/// Generator categories with their weights.
pub(crate) const CATEGORIES: [(&str, u64); 8] = [
    ("valid", 12),
    ("body", 28),
    ("query", 14),
    ("path", 15),
    ("header", 12),
    ("auth", 5),
    ("framing", 8),
    ("syntax", 6),
];

/// Request `index` of the run with `seed`; `only` restricts it to one category.
pub(crate) fn generate(ctx: &Ctx<'_>, seed: u64, index: u64, only: Option<&str>) -> Plan {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let total: u64 = CATEGORIES.iter().map(|(_, w)| w).sum();
    let mut roll = rng.below(total);
    let category = CATEGORIES
        .iter()
        .find(|(c, w)| {
            let hit = only.map_or(roll < *w, |o| o == *c);
            roll = roll.saturating_sub(*w);
            hit
        })
        .map_or("valid", |(c, _)| c);
    let mut draft = base(ctx, &mut rng, category);
    // One request in seven of each category is left as the base made it (a valid one).
    if category != "valid" && !rng.chance(1.0 / 7.0) {
        match category {
            "body" => mutate::body(ctx, &mut draft, &mut rng),
            "query" => mutate::query(ctx, &mut draft, &mut rng),
            "path" => mutate::path(ctx, &mut draft, &mut rng),
            "header" => mutate::header(ctx, &mut draft, &mut rng),
            "auth" => mutate::auth(ctx, &mut draft, &mut rng),
            "framing" => mutate::framing(&mut draft, &mut rng),
            _ => mutate::syntax(&mut draft, &mut rng),
        }
    }
    finish(draft, category, &mut rng)
}

/// A valid request of a client.
fn base(ctx: &Ctx<'_>, rng: &mut Rng, category: &str) -> Draft {
    let mut draft = Draft {
        method: b"POST".to_vec(),
        version: b"HTTP/1.1".to_vec(),
        prefix: format!("{}/msgpack", ctx.base).into_bytes(),
        segments: Vec::new(),
        trailing_slash: false,
        query: None,
        params: None,
        tree: None,
        body: Vec::new(),
        headers: vec![(b"Host".to_vec(), ctx.host.clone().into_bytes())],
        wire_body: None,
        raw: None,
        line_end: b"\r\n",
        http: Verdict::Valid,
        http_why: "",
        also_ok: &[],
        allow_close: false,
        lane: Lane::Keep,
        file: None,
    };
    if rng.chance(0.5) {
        draft.headers.extend([
            (b"Accept-Encoding".to_vec(), b"gzip, deflate".to_vec()),
            (b"Accept".to_vec(), b"*/*".to_vec()),
            (b"User-Agent".to_vec(), b"fuzz-server/1".to_vec()),
        ]);
    }
    // Body and query mutations need an object or slice request to mutate.
    let wants_object = matches!(category, "body" | "query") && rng.chance(0.85);
    let roll = if wants_object {
        2 + rng.below(2)
    } else {
        rng.below(20)
    };
    let method = match rng.below(10) {
        0..=5 => "POST",
        6..=8 => "GET",
        _ => "HEAD",
    };
    let method = match category {
        "body" => "POST",
        "query" => "GET",
        _ => method,
    };
    let (path, params): (Vec<String>, Vec<(&str, Param)>) = match roll {
        // Listing.
        0..=1 => {
            let dir = rng.pick(&ctx.dirs).clone();
            let depth = if rng.chance(0.5) {
                vec![("max_depth", Param::Int(rng.below(4)))]
            } else {
                Vec::new()
            };
            (dir, depth)
        }
        // Object map.
        2 => {
            let (path, file) = pick_hdf5(ctx, rng);
            draft.file = Some(file);
            let (name, _) = rng.pick(&ctx.site.objects[file]);
            let mut params = vec![("object", Param::Str(name.clone()))];
            if rng.chance(0.8) {
                let limit = *rng.pick(&[0u64, 0, 0, 16, 4096, 1 << 20]);
                params.push(("data_size_limit", Param::Int(limit)));
            }
            if rng.chance(0.8) {
                params.push(("max_depth", Param::Int(*rng.pick(&[0u64, 0, 0, 1, 2, 5]))));
            }
            (path, params)
        }
        // Slice.
        3..=5 => {
            let (path, file) = pick_hdf5(ctx, rng);
            draft.file = Some(file);
            let datasets: Vec<&(String, Object)> = ctx.site.objects[file]
                .iter()
                .filter(|(_, o)| matches!(o, Object::Dataset(_)))
                .collect();
            let (name, object) = *rng.pick(&datasets);
            let shape = match object {
                Object::Dataset(shape) => shape.clone(),
                _ => Vec::new(),
            };
            let spec = random_spec(rng, &shape);
            (
                path,
                vec![
                    ("object", Param::Str(name.clone())),
                    ("slice", Param::Slice(spec)),
                ],
            )
        }
        // File map.
        6..=7 => {
            let path = if rng.chance(0.5) || ctx.plain_files.is_empty() {
                pick_hdf5(ctx, rng).0
            } else {
                rng.pick(&ctx.plain_files).clone()
            };
            (path, Vec::new())
        }
        // Download.
        8..=9 => {
            draft.prefix = format!("{}/download", ctx.base).into_bytes();
            draft.method = if rng.chance(0.8) {
                b"GET".to_vec()
            } else {
                b"HEAD".to_vec()
            };
            let path = match rng.below(4) {
                0 => rng.pick(&ctx.dirs[1..]).clone(),
                1 => rng.pick(&ctx.plain_files).clone(),
                _ => pick_hdf5(ctx, rng).0,
            };
            draft.segments = path.iter().map(|s| encode_segment(s, rng)).collect();
            restricted_credentials(ctx, &mut draft, &path, rng);
            return draft;
        }
        // Anything known, mostly listings of a not visible path.
        _ => (rng.pick(&ctx.all).clone(), Vec::new()),
    };
    draft.method = method.as_bytes().to_vec();
    draft.segments = path.iter().map(|s| encode_segment(s, rng)).collect();
    draft.trailing_slash = rng.chance(0.05);
    restricted_credentials(ctx, &mut draft, &path, rng);
    if method == "POST" {
        draft
            .headers
            .push((b"Content-Type".to_vec(), b"application/x-msgpack".to_vec()));
        let entries = params
            .into_iter()
            .map(|(k, v)| (Mp::str(k), v.to_mp(rng)))
            .collect();
        draft.tree = Some(Mp::Map(entries));
    } else if !params.is_empty() || rng.chance(0.3) {
        draft.params = Some(
            params
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_text()))
                .collect(),
        );
    }
    draft
}

/// Alice's credentials for restricted paths (the only user allowed there); otherwise,
/// sometimes, a user's credentials on an open path.
fn restricted_credentials(ctx: &Ctx<'_>, draft: &mut Draft, path: &[String], rng: &mut Rng) {
    let restricted = path.first().is_some_and(|s| s == "restricted")
        || path.windows(2).any(|w| w == ["up", "restricted"]);
    if restricted || rng.chance(0.05) {
        let user = if restricted || rng.chance(0.5) { 0 } else { 1 };
        draft.set_header("Authorization", Some(ctx.credentials(user)));
    }
}

fn pick_hdf5(ctx: &Ctx<'_>, rng: &mut Rng) -> (Vec<String>, usize) {
    // Mostly the snapshot (file 0), through its direct path.
    if rng.chance(0.6)
        && let Some(found) = ctx.hdf5.iter().find(|(_, i)| *i == 0)
    {
        return found.clone();
    }
    rng.pick(&ctx.hdf5).clone()
}

/// A request parameter before it is encoded.
pub(crate) enum Param {
    Str(String),
    Int(u64),
    Slice(SliceSpec),
}

impl Param {
    fn to_mp(&self, rng: &mut Rng) -> Mp {
        match self {
            Param::Str(s) => Mp::str(s),
            Param::Int(v) => Mp::UInt(*v),
            Param::Slice(spec) => slice_tree(spec, rng),
        }
    }

    fn to_text(&self) -> String {
        match self {
            Param::Str(s) => s.clone(),
            Param::Int(v) => v.to_string(),
            Param::Slice(spec) => spec.to_query_string(),
        }
    }
}

/// A valid selection of a dataset of `shape`.
pub(crate) fn random_spec(rng: &mut Rng, shape: &[u64]) -> SliceSpec {
    let Some((&d0, rest)) = shape.split_first() else {
        return SliceSpec::scalar();
    };
    let range = |rng: &mut Rng, d: u64| {
        let start = rng.below(d + 1);
        let count = rng.below((d - start).min(300) + 1);
        DimSelection::new(start, count)
    };
    let runs = if d0 < 4 || rng.chance(0.6) {
        vec![range(rng, d0)]
    } else {
        let n = 2 + rng.below(6);
        let mut cuts: Vec<u64> = (0..2 * n).map(|_| rng.below(d0 + 1)).collect();
        cuts.sort_unstable();
        cuts.chunks(2)
            .map(|c| DimSelection::new(c[0], c[1] - c[0]))
            .collect()
    };
    SliceSpec::new(runs, rest.iter().map(|&d| range(rng, d)).collect())
}

/// The msgpack form of `spec` in one of the forms the protocol allows (PROTOCOL.md §5.1).
pub(crate) fn slice_tree(spec: &SliceSpec, rng: &mut Rng) -> Mp {
    if rng.chance(0.1) {
        return Mp::str(&spec.to_query_string());
    }
    let pair = |d: &DimSelection| Mp::Arr(vec![Mp::UInt(d.start), Mp::UInt(d.count)]);
    let mut dims = Vec::new();
    match spec.runs.as_slice() {
        [] => {}
        [one] if rng.chance(0.8) => dims.push(pair(one)),
        runs => {
            let starts = Mp::Arr(runs.iter().map(|r| Mp::UInt(r.start)).collect());
            let same = runs.iter().all(|r| r.count == runs[0].count);
            let counts = if same && rng.chance(0.5) {
                Mp::UInt(runs[0].count)
            } else {
                Mp::Arr(runs.iter().map(|r| Mp::UInt(r.count)).collect())
            };
            dims.push(Mp::Arr(vec![starts, counts]));
        }
    }
    dims.extend(spec.rest.iter().map(pair));
    Mp::Arr(dims)
}

/// Characters a path segment may hold unencoded (RFC 3986 `pchar`).
fn segment_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// A path segment percent-encoded: only what must be, everything, or a random mix, with
/// upper- or lower-case hex digits.
pub(crate) fn encode_segment(segment: &str, rng: &mut Rng) -> Vec<u8> {
    let style = rng.below(10);
    let lower = rng.chance(0.2);
    let mut out = Vec::with_capacity(segment.len() * 3);
    for &b in segment.as_bytes() {
        let encode = match style {
            0 => true,
            1 => !segment_safe(b) || rng.chance(0.5),
            _ => !segment_safe(b),
        };
        if encode {
            push_escape(&mut out, b, lower);
        } else {
            out.push(b);
        }
    }
    out
}

/// `%XX` of `b`.
pub(crate) fn push_escape(out: &mut Vec<u8>, b: u8, lower: bool) {
    let text = if lower {
        format!("%{b:02x}")
    } else {
        format!("%{b:02X}")
    };
    out.extend_from_slice(text.as_bytes());
}

/// A query value `application/x-www-form-urlencoded`: space as `+` or `%20`, reserved
/// characters escaped, others escaped sometimes.
pub(crate) fn encode_query_value(value: &str, rng: &mut Rng) -> Vec<u8> {
    let all = rng.chance(0.1);
    let plus = rng.chance(0.5);
    let mut out = Vec::with_capacity(value.len() + 8);
    for &b in value.as_bytes() {
        if b == b' ' && plus {
            out.push(b'+');
        } else if all
            || !crate::oracle::query_char(b)
            || matches!(b, b'&' | b'=' | b'+' | b'%' | b'#')
        {
            push_escape(&mut out, b, rng.chance(0.2));
        } else {
            out.push(b);
        }
    }
    out
}

/// Turn the draft into the bytes on the wire.
fn finish(mut draft: Draft, category: &'static str, rng: &mut Rng) -> Plan {
    if let Some(tree) = draft.tree.take() {
        draft.body = tree.to_bytes(rng);
        if category == "body" && rng.chance(0.3) {
            crate::msgpack::mutate_bytes(&mut draft.body, rng);
        }
    }
    if let Some(params) = draft.params.take() {
        let mut query = Vec::new();
        for (i, (k, v)) in params.iter().enumerate() {
            if i > 0 {
                query.push(b'&');
            }
            query.extend(encode_query_value(k, rng));
            query.push(b'=');
            query.extend(encode_query_value(v, rng));
        }
        draft.query = Some(query);
    }
    if category == "query" {
        mutate::raw_query(&mut draft, rng);
    }
    let mut target = draft.prefix.clone();
    for seg in &draft.segments {
        target.push(b'/');
        target.extend_from_slice(seg);
    }
    if draft.trailing_slash || (draft.segments.is_empty() && rng.chance(0.7)) {
        target.push(b'/');
    }
    if let Some(q) = &draft.query {
        target.push(b'?');
        target.extend_from_slice(q);
    }
    // Header count and size limits of the HTTP layer (hyper: 100 fields; a head of about
    // 400 KiB, more when it arrives in one read).
    let auto_length =
        draft.wire_body.is_none() && (!draft.body.is_empty() || draft.method == b"POST");
    let fields = draft.headers.len() + usize::from(auto_length);
    let head_bytes: usize = draft
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum::<usize>()
        + target.len();
    if fields > 100 || head_bytes > 1 << 20 {
        draft.http_verdict(Verdict::Invalid, "too many or too large header fields");
    } else if fields > 96 || head_bytes > 300 << 10 {
        draft.http_verdict(Verdict::Either, "near the header limits");
    }
    // A request that may be incomplete is followed by the end of the stream, so that the
    // server is not left waiting for the rest (closing without an answer is then allowed).
    // Complete requests are not: a server may take the end of the stream for a client that
    // went away and drop the answer.
    if let Lane::Fresh { half_close } = &mut draft.lane {
        *half_close = draft.allow_close;
    }
    let http_only = draft.raw.is_some();
    let connection = draft
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",");
    let closes = connection.contains("close")
        || (draft.version != b"HTTP/1.1" && !connection.contains("keep-alive"));
    let wire = match draft.raw.take() {
        Some(raw) => raw,
        None => {
            let eol = draft.line_end;
            let mut wire = Vec::with_capacity(256 + draft.body.len());
            wire.extend_from_slice(&draft.method);
            wire.push(b' ');
            wire.extend_from_slice(&target);
            wire.push(b' ');
            wire.extend_from_slice(&draft.version);
            wire.extend_from_slice(eol);
            for (n, v) in &draft.headers {
                wire.extend_from_slice(n);
                wire.extend_from_slice(b": ");
                wire.extend_from_slice(v);
                wire.extend_from_slice(eol);
            }
            match &draft.wire_body {
                Some(body) => {
                    wire.extend_from_slice(eol);
                    wire.extend_from_slice(body);
                }
                None => {
                    if auto_length {
                        wire.extend_from_slice(
                            format!("Content-Length: {}", draft.body.len()).as_bytes(),
                        );
                        wire.extend_from_slice(eol);
                    }
                    wire.extend_from_slice(eol);
                    wire.extend_from_slice(&draft.body);
                }
            }
            wire
        }
    };
    Plan {
        category,
        head: draft.method == b"HEAD",
        method: draft.method,
        target,
        headers: draft.headers,
        body: draft.body,
        http: draft.http,
        http_why: draft.http_why,
        also_ok: draft.also_ok,
        allow_close: draft.allow_close,
        lane: draft.lane,
        wire,
        http_only,
        closes,
    }
}
