//! The mutations of each category. Body, query, path and header mutations change what the
//! oracle reads (it judges the result); framing and syntax mutations break HTTP itself, and
//! say so with [`Draft::http_verdict`], since the oracle does not parse HTTP framing.

use hdfstream_reliability::Rng;

use crate::msgpack::{INTERESTING, Mp, random_bytes, random_value};
use crate::oracle::Verdict;
use crate::request::{Ctx, Draft, Lane, encode_segment, random_spec, slice_tree};
use crate::site::Object;

/// A new HDF5 object name from `name`: another object, a relative or odd spelling, a missing
/// one, characters the protocol refuses, or a name around the length limit.
fn object_name(ctx: &Ctx<'_>, file: Option<usize>, name: &str, rng: &mut Rng) -> String {
    let objects = &ctx.site.objects[file.unwrap_or(0)];
    match rng.below(16) {
        0 | 1 => rng.pick(objects).0.clone(),
        2 => name.trim_start_matches('/').to_owned(),
        3 => name.replace('/', "//"),
        4 => format!("{name}/"),
        5 => format!("{name}/./"),
        6 => format!("{name}/.."),
        7 => format!("{name}{}", one(rng, &["x", "0", " ", "\u{7f}", "*", "%2F"])),
        8 => (one(
            rng,
            &["", ".", "..", "/", "//", "/.", "/..", " ", "\\", "~"],
        ))
        .to_owned(),
        9 => {
            let mut s = name.to_owned();
            let at = rng.below(s.len() as u64 + 1) as usize;
            let at = (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
            s.insert_str(
                at,
                one(rng, &["é", "日", "\u{202e}", "\n", "\t", "\0", "\u{ff0e}"]),
            );
            s
        }
        10 => {
            let len = *rng.pick(&[4095usize, 4096, 4097, 5000]);
            let mut s = format!("{name}/");
            while s.len() < len {
                s.push('a');
            }
            s.truncate(len);
            s
        }
        11 => name.to_ascii_uppercase(),
        12 => format!(" {name}"),
        13 => String::from_utf8_lossy(&random_bytes(rng, 40, true)).into_owned(),
        14 => format!("{name}/{}", rng.pick(objects).0.trim_start_matches('/')),
        _ => format!("/{}", rng.pick(objects).0.replace('/', "/./")),
    }
}

/// One of `items` (string and byte-string literals).
fn one<'a, T: ?Sized>(rng: &mut Rng, items: &[&'a T]) -> &'a T {
    items[rng.below(items.len() as u64) as usize]
}

/// Numbers for integer parameters: mostly at the edges.
fn number(rng: &mut Rng) -> i128 {
    if rng.chance(0.7) {
        *rng.pick(INTERESTING)
    } else {
        i128::from(rng.below(2000)) - 100
    }
}

/// Structure-aware mutations of the msgpack body, then (sometimes, when the draft is
/// finished) byte-level ones.
pub(crate) fn body(ctx: &Ctx<'_>, draft: &mut Draft, rng: &mut Rng) {
    let Some(Mp::Map(entries)) = draft.tree.as_mut() else {
        return;
    };
    for _ in 0..1 + rng.below(3) {
        let key_of = |e: &(Mp, Mp)| match &e.0 {
            Mp::Str(k) => String::from_utf8_lossy(k).into_owned(),
            _ => String::new(),
        };
        let at = rng.below(entries.len().max(1) as u64) as usize;
        match rng.below(14) {
            // A parameter's value.
            0..=5 if !entries.is_empty() => {
                let key = key_of(&entries[at]);
                let value = &mut entries[at].1;
                *value = match (key.as_str(), &*value) {
                    ("object", Mp::Str(name)) if rng.chance(0.85) => {
                        let name = String::from_utf8_lossy(name).into_owned();
                        Mp::str(&object_name(ctx, draft.file, &name, rng))
                    }
                    ("slice", _) if rng.chance(0.85) => slice(ctx, draft.file, value, rng),
                    ("max_depth" | "data_size_limit", _) if rng.chance(0.8) => Mp::int(number(rng)),
                    _ => random_value(rng, 2),
                };
            }
            // An unknown, duplicate, missing or extra parameter; the order.
            6 => entries.push((
                Mp::str(one(
                    rng,
                    &["max_data_size", "Object", "slices", "", "object "],
                )),
                random_value(rng, 1),
            )),
            7 if !entries.is_empty() => {
                let copy = entries[at].clone();
                entries.push(copy);
            }
            8 if !entries.is_empty() => {
                entries.remove(at);
            }
            9 => {
                let key = one(rng, &["object", "max_depth", "data_size_limit", "slice"]);
                let value = match key {
                    "object" => Mp::str(&rng.pick(&ctx.site.objects[0]).0),
                    "slice" => slice_tree(&random_spec(rng, &[1000, 3]), rng),
                    _ => Mp::int(number(rng)),
                };
                entries.push((Mp::str(key), value));
            }
            10 if entries.len() > 1 => {
                let other = rng.below(entries.len() as u64) as usize;
                entries.swap(at, other);
            }
            // A key that is not a string.
            11 if !entries.is_empty() => entries[at].0 = random_value(rng, 1),
            // Something else than a map.
            12 => {
                draft.tree = Some(random_value(rng, 3));
                return;
            }
            _ => {
                draft.tree = Some(Mp::Map(vec![(
                    Mp::str("object"),
                    Mp::Raw(
                        one(
                            rng,
                            &[
                                &[0xdb, 0xff, 0xff, 0xff, 0xff][..],
                                &[0xc6, 0x7f, 0xff, 0xff, 0xff],
                                &[0xdd, 0xff, 0xff, 0xff, 0xf0],
                                &[0xdf, 0x7f, 0xff, 0xff, 0xff],
                                &[0x91; 4096],
                            ],
                        )
                        .to_vec(),
                    ),
                )]));
                return;
            }
        }
    }
}

/// A mutated slice value: numbers moved (to interesting values or just past the shape),
/// runs added or reordered, the rank changed, or the string form mutated.
fn slice(ctx: &Ctx<'_>, file: Option<usize>, value: &Mp, rng: &mut Rng) -> Mp {
    match rng.below(6) {
        // A valid selection of another dataset of the file (a 404 or a 200).
        0 => {
            let objects = &ctx.site.objects[file.unwrap_or(0)];
            match &rng.pick(objects).1 {
                Object::Dataset(shape) => slice_tree(&random_spec(rng, shape), rng),
                _ => slice_tree(&random_spec(rng, &[10]), rng),
            }
        }
        1 => {
            let spec = random_spec(rng, &[1000, 3]);
            let mut text = spec.to_query_string().into_bytes();
            mutate_text(&mut text, rng);
            Mp::Str(text)
        }
        2 => {
            // Many runs (a large body and the server's run handling).
            let n = *rng.pick(&[100u64, 1000, 5000]);
            let starts = (0..n).map(|i| Mp::UInt(i * 2)).collect();
            Mp::Arr(vec![
                Mp::Arr(vec![Mp::Arr(starts), Mp::UInt(1)]),
                Mp::Arr(vec![Mp::UInt(0), Mp::UInt(3)]),
            ])
        }
        _ => {
            let mut tree = value.clone();
            for _ in 0..1 + rng.below(2) {
                tweak(&mut tree, rng, 0);
            }
            tree
        }
    }
}

/// One random change somewhere in a slice tree.
fn tweak(tree: &mut Mp, rng: &mut Rng, depth: u32) {
    match tree {
        Mp::Arr(items) if !items.is_empty() && depth < 4 && rng.chance(0.7) => {
            let at = rng.below(items.len() as u64) as usize;
            tweak(&mut items[at], rng, depth + 1);
        }
        Mp::Arr(items) => match rng.below(4) {
            0 if !items.is_empty() => {
                items.remove(rng.below(items.len() as u64) as usize);
            }
            1 if !items.is_empty() => {
                let copy = items[rng.below(items.len() as u64) as usize].clone();
                items.push(copy);
            }
            2 if items.len() > 1 => items.reverse(),
            _ => items.push(Mp::UInt(rng.below(4))),
        },
        Mp::UInt(v) => {
            *tree = match rng.below(4) {
                0 => Mp::int(number(rng)),
                1 => Mp::UInt(v.saturating_add(1 + rng.below(3))),
                2 => Mp::UInt(v.saturating_sub(1)),
                _ => random_value(rng, 1),
            }
        }
        _ => *tree = random_value(rng, 1),
    }
}

/// Edits of a slice string or other text: separators, signs, spaces, digits, long numbers.
fn mutate_text(text: &mut Vec<u8>, rng: &mut Rng) {
    const PIECES: &[&str] = &[
        ":",
        ";",
        ",",
        " ",
        "+",
        "-",
        "0",
        "9",
        "...",
        "::",
        "99999999999999999999",
        "9223372036854775807",
        "4294967296",
        "1e3",
        "0x10",
        "\t",
    ];
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(text.len() as u64 + 1) as usize;
        match rng.below(3) {
            0 => {
                let piece = rng.pick(PIECES).as_bytes();
                text.splice(at..at, piece.iter().copied());
            }
            1 if at < text.len() => {
                text.remove(at);
            }
            _ => {
                let copy = text.clone();
                text.push(b';');
                text.extend(copy);
            }
        }
    }
}

/// Query parameter mutations (before encoding): values at the edges, repeated, unknown,
/// missing or renamed parameters, mutated slice strings and object names.
pub(crate) fn query(ctx: &Ctx<'_>, draft: &mut Draft, rng: &mut Rng) {
    let file = draft.file;
    let params = draft.params.get_or_insert_with(Vec::new);
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(params.len().max(1) as u64) as usize;
        match rng.below(9) {
            0..=3 if !params.is_empty() => {
                let (key, value) = &mut params[at];
                *value = match key.as_str() {
                    "object" => object_name(ctx, file, value, rng),
                    "slice" => {
                        let mut text = value.clone().into_bytes();
                        mutate_text(&mut text, rng);
                        String::from_utf8_lossy(&text).into_owned()
                    }
                    _ => (one(
                        rng,
                        &[
                            "",
                            "0",
                            "-0",
                            "+1",
                            "-1",
                            "2147483647",
                            "2147483648",
                            "99999999999",
                            "1.0",
                            "1e3",
                            " 1",
                            "0x10",
                            "abc",
                            "\u{663}",
                            "00001",
                            "+",
                            "-",
                        ],
                    ))
                    .to_owned(),
                };
            }
            4 if !params.is_empty() => {
                let (key, _) = params[at].clone();
                let value = one(rng, &["", "-1", "x", "/Header", "0:1"]).to_string();
                if rng.chance(0.5) {
                    params.push((key, value));
                } else {
                    params.insert(0, (key, value));
                }
            }
            5 if !params.is_empty() => {
                params.remove(at);
            }
            6 if !params.is_empty() => params[at].0 = params[at].0.to_ascii_uppercase(),
            7 => params.push((
                (one(rng, &["unknown", "", "max_data_size", "object[]", "slice "])).to_owned(),
                "1".to_owned(),
            )),
            _ => {
                let spec = random_spec(rng, &[1000, 3]);
                params.push(("slice".to_owned(), spec.to_query_string()));
            }
        }
    }
}

/// Byte-level edits of the encoded query: stray separators, malformed, NUL and non-UTF-8
/// escapes, and (rarely) raw bytes RFC 3986 does not allow.
pub(crate) fn raw_query(draft: &mut Draft, rng: &mut Rng) {
    if !rng.chance(0.4) {
        return;
    }
    let query = draft.query.get_or_insert_with(Vec::new);
    let at = rng.below(query.len() as u64 + 1) as usize;
    let piece: &[u8] = one(
        rng,
        &[
            &b"&"[..],
            b"&&",
            b"=",
            b"==",
            b"%",
            b"%zz",
            b"%4",
            b"%ff%fe",
            b"%00",
            b"%C3%A9",
            b"+",
            b"?",
            b";",
            b"\xff",
            b"\"",
            b"{}",
            b"#frag",
        ],
    );
    query.splice(at..at, piece.iter().copied());
}

/// Path mutations: traversal in its encodings, empty and dot segments, encoded separators,
/// NUL, overlong UTF-8, other Unicode forms, long segments and paths, raw bytes, and the
/// endpoint itself misspelled.
pub(crate) fn path(ctx: &Ctx<'_>, draft: &mut Draft, rng: &mut Rng) {
    const SEGMENTS: &[&str] = &[
        "..",
        ".",
        "",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e",
        "...",
        "%2f",
        "..%2f..",
        "%5c",
        "..%5c..",
        "%00",
        "a%00b",
        "%c0%ae%c0%ae",
        "%c0%af",
        "%ff%fe",
        "%EF%BC%8E%EF%BC%8E",
        "%252e%252e",
        "~",
        "*",
        "CON",
        "%20",
        "+",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        ".hidden",
        "%2ehidden",
        "restricted",
        "links",
        "up",
        "donne%CC%81es",
        "d%C3%B3nn%C3%A9es",
        "%E2%80%AE",
        "%",
        "%4",
        "%zz",
        "%%",
        "a\\b",
        "\"",
        "%22",
        "%3F",
        "%23",
    ];
    for _ in 0..1 + rng.below(2) {
        let segs = &mut draft.segments;
        let at = rng.below(segs.len() as u64 + 1) as usize;
        match rng.below(13) {
            0 | 1 if at < segs.len() => segs[at] = rng.pick(SEGMENTS).as_bytes().to_vec(),
            2 | 3 => segs.insert(at, rng.pick(SEGMENTS).as_bytes().to_vec()),
            // Double encoding.
            4 if at < segs.len() => {
                let seg = std::mem::take(&mut segs[at]);
                segs[at] = seg
                    .iter()
                    .flat_map(|&b| if b == b'%' { b"%25".to_vec() } else { vec![b] })
                    .collect();
            }
            5 if at < segs.len() => segs[at].make_ascii_uppercase(),
            6 if at < segs.len() => segs[at].extend_from_slice(b"%00.txt"),
            7 => {
                let n = *rng.pick(&[255usize, 256, 1000, 4096, 5000]);
                segs.insert(at, vec![b'a'; n]);
            }
            8 => {
                let n = *rng.pick(&[64usize, 100, 1500, 2100, 2500]);
                for _ in 0..n {
                    segs.insert(at, b"a".to_vec());
                }
            }
            9 => draft.trailing_slash = !draft.trailing_slash,
            10 if at < segs.len() => {
                let seg = &mut segs[at];
                let i = rng.below(seg.len() as u64 + 1) as usize;
                let raw: &[u8] = one(rng, &[&b"\x80"[..], b"\xc3\xa9", b"\\", b"{", b"|", b"^"]);
                seg.splice(i..i, raw.iter().copied());
            }
            11 => {
                let base = ctx.base.clone();
                let endpoint = if draft.prefix.ends_with(b"download") {
                    "download"
                } else {
                    "msgpack"
                };
                let prefix = match rng.below(12) {
                    0 => format!("{}/{endpoint}", base.to_ascii_uppercase()),
                    1 => format!("{base}/{}", endpoint.to_ascii_uppercase()),
                    2 => format!("{base}/{endpoint}.json"),
                    3 => format!("{base}//{endpoint}"),
                    4 => format!("/{base}/{endpoint}"),
                    5 => format!("{base}/%6d{}", &endpoint[1..]),
                    6 => format!("{base}/./{endpoint}"),
                    7 => format!("{base}/x/../{endpoint}"),
                    8 => format!("{base}/{endpoint};jsessionid=1"),
                    9 => base.clone(),
                    10 => format!("http://{}{base}/{endpoint}", ctx.host),
                    _ => format!("/{endpoint}"),
                };
                draft.prefix = prefix.into_bytes();
            }
            _ => {
                // A path from elsewhere in the tree, or the other endpoint.
                if rng.chance(0.5) {
                    let other = rng.pick(&ctx.site.paths).clone();
                    draft.segments = other.iter().map(|s| encode_segment(s, rng)).collect();
                } else if draft.prefix.ends_with(b"msgpack") {
                    draft.prefix = format!("{}/download", ctx.base).into_bytes();
                } else {
                    draft.prefix = format!("{}/msgpack", ctx.base).into_bytes();
                }
            }
        }
    }
}

/// Header mutations the HTTP layer accepts (the request stays on its keep-alive
/// connection unless the change may be refused): extension fields, content negotiation,
/// ranges, content types, Connection, Expect, HTTP/1.0, many or long fields, Host.
pub(crate) fn header(ctx: &Ctx<'_>, draft: &mut Draft, rng: &mut Rng) {
    for _ in 0..1 + rng.below(2) {
        match rng.below(12) {
            0 | 1 => {
                for _ in 0..1 + rng.below(5) {
                    let name = token(rng);
                    let value = field_value(rng);
                    draft.headers.push((name, value));
                }
            }
            2 => draft.set_header(
                "Accept-Encoding",
                Some(
                    one(
                        rng,
                        &[
                            &b"gzip"[..],
                            b"br",
                            b"zstd",
                            b"identity",
                            b"*",
                            b"gzip;q=0, identity;q=0",
                            b"",
                            b"deflate, gzip;q=1.0, *;q=0.5",
                            b"\xff\xfe",
                        ],
                    )
                    .to_vec(),
                ),
            ),
            3 => draft.set_header(
                "Range",
                Some(
                    one(
                        rng,
                        &[
                            &b"bytes=0-0"[..],
                            b"bytes=0-",
                            b"bytes=-1",
                            b"bytes=10-5",
                            b"bytes=999999999-",
                            b"bytes=0-1,2-3",
                            b"items=1-2",
                            b"bytes=abc",
                        ],
                    )
                    .to_vec(),
                ),
            ),
            4 if draft.method == b"POST" => {
                let value: &[u8] = one(
                    rng,
                    &[
                        &b"application/x-msgpack"[..],
                        b"Application/X-Msgpack",
                        b"application/x-msgpack; charset=utf-8",
                        b"application/x-msgpack ",
                        b" application/x-msgpack",
                        b"application/x-msgpack\t",
                        b"application/msgpack",
                        b"text/plain",
                        b"",
                        b"application/x-msgpack,application/json",
                        b"application/x-msgpackx",
                        b"*/*",
                    ],
                );
                if rng.chance(0.2) {
                    draft
                        .headers
                        .push((b"Content-Type".to_vec(), value.to_vec()));
                } else {
                    draft.set_header("Content-Type", Some(value.to_vec()));
                }
            }
            5 => draft.set_header(
                "Connection",
                Some(
                    one(
                        rng,
                        &[&b"close"[..], b"keep-alive", b"foo", b"Keep-Alive, Foo"],
                    )
                    .to_vec(),
                ),
            ),
            6 if draft.method == b"POST" => {
                draft.set_header("Expect", Some(b"100-continue".to_vec()))
            }
            7 => {
                draft.version = b"HTTP/1.0".to_vec();
                if rng.chance(0.5) {
                    draft.set_header("Connection", Some(b"keep-alive".to_vec()));
                }
            }
            8 => {
                let n = *rng.pick(&[20usize, 60, 90, 99, 101, 150]);
                for i in 0..n {
                    draft
                        .headers
                        .push((format!("X-Many-{i}").into_bytes(), b"v".to_vec()));
                }
            }
            9 => {
                let n = *rng.pick(&[8usize << 10, 64 << 10, 200 << 10, 500 << 10, 2 << 20]);
                draft.headers.push((b"X-Long".to_vec(), vec![b'a'; n]));
            }
            10 => {
                match rng.below(4) {
                    0 => draft.set_header("Host", None),
                    1 => draft
                        .headers
                        .push((b"Host".to_vec(), b"other.example:1".to_vec())),
                    2 => draft.set_header("Host", Some(b"".to_vec())),
                    _ => draft.set_header("Host", Some(b"bad host/\x7e".to_vec())),
                }
                draft.http_verdict(Verdict::Either, "missing, repeated or odd Host");
            }
            _ => draft.set_header(
                one(
                    rng,
                    &[
                        "Cookie",
                        "If-None-Match",
                        "If-Modified-Since",
                        "X-Forwarded-For",
                        "Referer",
                        "Origin",
                        "Cache-Control",
                        "TE",
                    ],
                ),
                Some(field_value(rng)),
            ),
        }
    }
    let _ = ctx;
}

/// A header name: a random `token` (not one HTTP gives a meaning).
fn token(rng: &mut Rng) -> Vec<u8> {
    const TCHAR: &[u8] =
        b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut name = b"X-".to_vec();
    name.extend((0..1 + rng.below(20)).map(|_| *rng.pick(TCHAR)));
    name
}

/// A header value of visible ASCII, spaces, tabs and obs-text (what HTTP allows).
fn field_value(rng: &mut Rng) -> Vec<u8> {
    let mut value: Vec<u8> = (0..rng.below(60))
        .map(|_| match rng.below(10) {
            0 => b'\t',
            1 => 0x80 + rng.below(128) as u8,
            _ => 0x20 + rng.below(95) as u8,
        })
        .collect();
    // No leading or trailing whitespace (it would not be part of the value).
    while value.first().is_some_and(|b| matches!(b, b' ' | b'\t')) {
        value.remove(0);
    }
    while value.last().is_some_and(|b| matches!(b, b' ' | b'\t')) {
        value.pop();
    }
    value
}

/// Credentials: the right ones with other spellings (the request stays valid), or wrong
/// ones of every kind (401 or 429), sent from the second address.
pub(crate) fn auth(ctx: &Ctx<'_>, draft: &mut Draft, rng: &mut Rng) {
    use base64::Engine;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let user = rng.below(2) as usize;
    let right = ctx.credentials(user);
    let token = right[6..].to_vec();
    if rng.chance(0.5) {
        let scheme: &[u8] = one(rng, &[&b"Basic "[..], b"basic ", b"BASIC ", b"Basic   "]);
        let mut value = scheme.to_vec();
        value.extend_from_slice(&token);
        if rng.chance(0.3) {
            value.extend_from_slice(b"  ");
        }
        draft.set_header("Authorization", Some(value));
        return;
    }
    let (name, password, _) = crate::site::USERS[user];
    let wrong: Vec<u8> = match rng.below(13) {
        0 => format!("Basic {}", b64(format!("{name}:nope").as_bytes())).into_bytes(),
        1 => format!("Basic {}", b64(format!("mallory:{password}").as_bytes())).into_bytes(),
        2 => format!("Basic {}", b64(format!("{name}:").as_bytes())).into_bytes(),
        3 => b"Basic".to_vec(),
        4 => b"Basic ".to_vec(),
        5 => b"Basic !!!not-base64!!!".to_vec(),
        6 => format!("Basic {}", b64(format!("{name}{password}").as_bytes())).into_bytes(),
        7 => format!("Basic {}", b64(b"alice:\xff\xfe")).into_bytes(),
        8 => b"Bearer abc.def.ghi".to_vec(),
        9 => format!("Basic {}", b64(&vec![b'a'; 10 << 10])).into_bytes(),
        10 => {
            let mut t = right.clone();
            let at = 6 + rng.below(token.len() as u64) as usize;
            t[at] = if t[at] == b'A' { b'B' } else { b'A' };
            t
        }
        11 => {
            let mut t = b"Basic\t".to_vec();
            t.extend_from_slice(&token);
            t
        }
        _ => {
            let mut t = b"Basic ".to_vec();
            t.extend(b"\xe9\xe9\xff");
            t
        }
    };
    draft.set_header("Authorization", Some(wrong));
    // Wrong credentials are refused before the body is read; GET keeps the connection usable.
    if draft.method == b"POST" {
        draft.method = b"GET".to_vec();
        draft.tree = None;
        draft.body.clear();
        draft.set_header("Content-Type", None);
    }
    draft.lane = Lane::Abuse;
}

/// Framing mutations on a connection of their own: Content-Length spelled oddly, repeated,
/// shorter or longer than the body, over the body limit; chunked bodies, valid and broken;
/// both framings at once; unknown transfer codings.
pub(crate) fn framing(draft: &mut Draft, rng: &mut Rng) {
    use Verdict::{Either, Invalid, Valid};
    // The body as it will be encoded (trees are encoded here, where the framing needs it).
    if let Some(tree) = draft.tree.take() {
        draft.body = tree.to_bytes(rng);
    }
    draft.lane = Lane::Fresh { half_close: false };
    draft.set_header("Connection", Some(b"close".to_vec()));
    // The download endpoint answers without reading a body, so an error in the body's
    // framing (not in its headers) may go unseen there.
    let body_error = if draft.prefix.ends_with(b"/download") {
        Either
    } else {
        Invalid
    };
    let body = draft.body.clone();
    let len = body.len();
    let mut headers: Vec<(&str, String)> = Vec::new();
    let mut wire = body.clone();
    let (verdict, why): (Verdict, &'static str) = match rng.below(16) {
        0 => {
            headers.push(("Content-Length", format!(" {len} ")));
            (Valid, "")
        }
        1 => {
            headers.push(("Content-Length", format!("00{len}")));
            (Either, "Content-Length with leading zeros")
        }
        2 => {
            headers.push(("Content-Length", format!("+{len}")));
            (Invalid, "signed Content-Length")
        }
        3 => {
            headers.push(("Content-Length", format!("{len}, {len}")));
            (Either, "Content-Length list")
        }
        4 => {
            headers.push(("Content-Length", len.to_string()));
            headers.push(("Content-Length", len.to_string()));
            (Either, "repeated Content-Length")
        }
        5 => {
            headers.push(("Content-Length", len.to_string()));
            headers.push(("Content-Length", (len + 1).to_string()));
            (Invalid, "conflicting Content-Lengths")
        }
        6 => {
            let value = one(
                rng,
                &["-1", "abc", "", "1.0", "0x10", "18446744073709551616"],
            );
            headers.push(("Content-Length", value.to_owned()));
            (Invalid, "malformed Content-Length")
        }
        7 => {
            let value = one(rng, &["1073741824", "9223372036854775807", "335544321"]);
            headers.push(("Content-Length", value.to_owned()));
            draft.allow_close = true;
            (Invalid, "Content-Length over the body limit")
        }
        8 if len > 0 => {
            // Shorter: the server reads a prefix; the rest is never read (the connection
            // closes after the answer).
            let cut = rng.below(len as u64) as usize;
            headers.push(("Content-Length", cut.to_string()));
            draft.body.truncate(cut);
            (Valid, "")
        }
        9 => {
            headers.push((
                "Content-Length",
                (len + 1 + rng.below(100) as usize).to_string(),
            ));
            draft.allow_close = true;
            (body_error, "body shorter than its Content-Length")
        }
        10 | 11 => {
            let te = one(rng, &["chunked", "Chunked", "CHUNKED", " chunked"]);
            headers.push(("Transfer-Encoding", te.to_owned()));
            wire = chunked(&body, rng, true);
            (Valid, "")
        }
        12 => {
            headers.push(("Transfer-Encoding", "chunked".to_owned()));
            headers.push(("Content-Length", len.to_string()));
            wire = chunked(&body, rng, true);
            (Either, "Transfer-Encoding and Content-Length")
        }
        13 => {
            let te = one(
                rng,
                &[
                    "gzip",
                    "chunked, gzip",
                    "identity",
                    "x",
                    "gzip, chunked",
                    "chunked, chunked",
                ],
            );
            headers.push(("Transfer-Encoding", te.to_owned()));
            wire = chunked(&body, rng, true);
            draft.also_ok = &[501];
            draft.allow_close = true;
            if te.ends_with("chunked") {
                // Chunked last: the body is framed; what the other coding means is left to
                // the application (which may refuse or not understand it).
                (Either, "transfer coding before chunked")
            } else {
                (Invalid, "unknown or misplaced transfer coding")
            }
        }
        _ => {
            headers.push(("Transfer-Encoding", "chunked".to_owned()));
            wire = chunked(&body, rng, false);
            draft.allow_close = true;
            (body_error, "broken chunked body")
        }
    };
    for (name, value) in headers {
        draft
            .headers
            .push((name.as_bytes().to_vec(), value.into_bytes()));
    }
    draft.wire_body = Some(wire);
    draft.http = verdict;
    draft.http_why = why;
}

/// `body` in chunks of random sizes (hex in either case, sometimes with extensions and a
/// trailer); with `valid` false, broken in one of several ways.
fn chunked(body: &[u8], rng: &mut Rng, valid: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let n = (1 + rng.below(rest.len() as u64) as usize).min(rest.len());
        let size = if rng.chance(0.5) {
            format!("{n:x}")
        } else {
            format!("{n:X}")
        };
        out.extend_from_slice(size.as_bytes());
        if rng.chance(0.2) {
            out.extend_from_slice(b";ext=1");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    if valid {
        out.extend_from_slice(b"0\r\n");
        if rng.chance(0.2) {
            out.extend_from_slice(b"X-Trailer: 1\r\n");
        }
        out.extend_from_slice(b"\r\n");
        return out;
    }
    match rng.below(6) {
        0 => out.extend_from_slice(b"zz\r\nabc\r\n0\r\n\r\n"),
        1 => out.extend_from_slice(b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
        2 => out.extend_from_slice(b"-1\r\n\r\n0\r\n\r\n"),
        3 => out.extend_from_slice(b"10\r\nshort"),
        4 => {}
        _ => out.extend_from_slice(b"3\r\nabcdef\r\n0\r\n\r\n"),
    }
    out
}

/// HTTP syntax mutations on a connection of their own: methods, versions, line endings,
/// malformed header fields, garbage instead of a request, a request cut short, an overlong
/// target.
pub(crate) fn syntax(draft: &mut Draft, rng: &mut Rng) {
    use Verdict::{Either, Invalid};
    draft.lane = Lane::Fresh { half_close: false };
    if let Some(tree) = draft.tree.take() {
        draft.body = tree.to_bytes(rng);
    }
    match rng.below(10) {
        0 => {
            let method: &[u8] = one(
                rng,
                &[
                    &b"get"[..],
                    b"Get",
                    b"FOO",
                    b"PUT",
                    b"DELETE",
                    b"PATCH",
                    b"OPTIONS",
                    b"TRACE",
                    b"G\x00ET",
                    b"",
                    &[b'A'; 1000],
                ],
            );
            draft.method = method.to_vec();
            draft.http_verdict(Invalid, "method");
            draft.allow_close = method.is_empty();
        }
        1 => {
            let version: &[u8] = one(
                rng,
                &[
                    &b"HTTP/1.2"[..],
                    b"HTTP/2.0",
                    b"HTTP/0.9",
                    b"http/1.1",
                    b"HTTP/11",
                    b"HTTP/1.1 ",
                    b"HTTP/1",
                    b"",
                ],
            );
            draft.version = version.to_vec();
            match version {
                b"HTTP/1.2" | b"HTTP/1.1 " => draft.http_verdict(Either, "odd version"),
                _ => {
                    draft.http_verdict(Invalid, "version");
                    draft.also_ok = &[505];
                    draft.allow_close = true;
                }
            }
        }
        2 => {
            draft.line_end = b"\n";
            draft.http_verdict(Either, "bare LF line endings");
        }
        3 => {
            let (name, value, verdict): (&[u8], &[u8], Verdict) = *rng.pick(&[
                (&b"Bad Name"[..], &b"x"[..], Invalid),
                (b"Host ", b"x", Invalid),
                (b"", b"x", Invalid),
                (b"X-A(b)", b"x", Invalid),
                (b"X-\xc3\xa9", b"x", Invalid),
                (b"X-Ctl", b"a\x01b", Invalid),
                (b"X-Nul", b"a\x00b", Invalid),
                (b"X-Del", b"a\x7fb", Invalid),
                (b"X-Fold", b"a\r\n b", Either),
                (b"X-Cr", b"a\rb", Invalid),
            ]);
            draft.headers.push((name.to_vec(), value.to_vec()));
            draft.http_verdict(verdict, "malformed header field");
            draft.allow_close = true;
        }
        4 => {
            draft
                .headers
                .insert(0, (b" X-Lead".to_vec(), b"x".to_vec()));
            draft.http_verdict(Either, "whitespace before the first field");
            draft.allow_close = true;
        }
        5 => {
            let garbage: Vec<u8> = match rng.below(4) {
                0 => random_bytes(rng, 200, false),
                1 => random_bytes(rng, 200, true),
                2 => b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
                _ => b"PRI * HTTP/1.1\r\n\r\n".to_vec(),
            };
            draft.raw = Some(garbage);
            draft.http_verdict(Invalid, "not an HTTP request");
            draft.allow_close = true;
        }
        6 => {
            // A request cut short, then the end of the stream.
            let mut wire = draft.method.clone();
            wire.extend_from_slice(b" /");
            let cut = one(
                rng,
                &[
                    &b"hdfstream/msgpack/ HTTP/1.1\r\nHost: x\r\n"[..],
                    b"hdf",
                    b"hdfstream/msgpack/ HTTP/1.1\r\nContent-Le",
                ],
            );
            wire.extend_from_slice(cut);
            draft.raw = Some(wire);
            draft.http_verdict(Invalid, "request cut short");
            draft.allow_close = true;
        }
        7 => {
            let n = *rng.pick(&[70_000usize, 100_000]);
            draft.segments.push(vec![b'a'; n]);
            draft.http_verdict(Invalid, "target too long");
            draft.allow_close = true;
        }
        8 => {
            let mut wire = draft.method.clone();
            wire.extend_from_slice(one(
                rng,
                &[
                    &b"  /hdfstream/msgpack/ HTTP/1.1\r\n\r\n"[..],
                    b"\t/hdfstream/msgpack/\tHTTP/1.1\r\n\r\n",
                    b" /hdfstream/msgpack/ HTTP/1.1 extra\r\n\r\n",
                ],
            ));
            draft.raw = Some(wire);
            draft.http_verdict(Either, "odd request line spacing");
            draft.allow_close = true;
        }
        _ => {
            draft.version = b"HTTP/1.0".to_vec();
            draft.set_header("Transfer-Encoding", Some(b"chunked".to_vec()));
            draft.wire_body = Some(chunked(&draft.body.clone(), rng, true));
            draft.http_verdict(Invalid, "Transfer-Encoding in HTTP/1.0");
            draft.allow_close = true;
        }
    }
}
