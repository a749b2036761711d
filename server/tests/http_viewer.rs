//! The viewer's HTTP side (no browser): `<base>/viewer/` and every deep link under it serve
//! the page with the server's base path put in, the embedded assets (the files of
//! `server/viewer-dist/`) have their media types and cache headers, unknown assets are 404,
//! `<base>/viewer` redirects, and all of it follows a non-default base path.

mod http_common;

use std::path::{Path, PathBuf};

use hdfstream_server::{ServeConfig, ServerHandle};
use http_common::{Answer, get};

fn dist(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("viewer-dist")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn server(root: &Path, base_path: &str) -> ServerHandle {
    std::fs::write(root.join("a.txt"), b"a").expect("write");
    let mut config = ServeConfig::new(root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.base_path = base_path.to_owned();
    ServerHandle::start_with(config).expect("server")
}

/// The origin (`http://host:port`) of a base URL.
fn origin(base_url: &str) -> String {
    format!("http://{}", http_common::host_port(base_url))
}

fn text(answer: &Answer) -> String {
    String::from_utf8(answer.body.clone()).expect("UTF-8 body")
}

/// The `src`/`href` URL in `page` that ends in `/.assets/<name>?v=...`.
fn asset_url(page: &str, name: &str) -> String {
    let needle = format!("/viewer/.assets/{name}?v=");
    let at = page
        .find(&needle)
        .unwrap_or_else(|| panic!("{needle} not in {page}"));
    let start = page[..at].rfind('"').expect("attribute start") + 1;
    let end = at + page[at..].find('"').expect("attribute end");
    page[start..end].to_owned()
}

/// GET `target` over a raw connection with `Accept-Encoding: accept` (none when empty), so
/// that no client decompresses: the response head's lines and the body as sent.
fn raw_get(base_url: &str, target: &str, accept: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let host = http_common::host_port(base_url);
    let mut stream = std::net::TcpStream::connect(&host).expect("connect");
    let accept = if accept.is_empty() {
        String::new()
    } else {
        format!("Accept-Encoding: {accept}\r\n")
    };
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{accept}\r\n"
    )
    .expect("write");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read");
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&reply[..split]).to_ascii_lowercase();
    (head, reply[split + 4..].to_vec())
}

/// Checks the page and its assets for a server whose base path is `base`.
fn check_viewer(base: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = server(tmp.path(), base);
    let url = srv.base_url().to_owned();
    assert!(url.ends_with(base), "{url} ends with {base:?}");
    let origin = origin(&url);

    let page = get(&format!("{url}/viewer/"), None);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let html = text(&page);
    assert!(
        html.contains(&format!(
            "<meta name=\"hdfstream-base\" content=\"{base}\">"
        )),
        "{html}"
    );
    assert!(!html.contains("__HDFSTREAM_"), "a placeholder left: {html}");
    // The page is the built template with the base path and a version put in.
    let template = String::from_utf8(dist("index.html")).expect("UTF-8 template");
    let js = asset_url(&html, "viewer.js");
    let css = asset_url(&html, "viewer.css");
    assert!(js.starts_with(&format!("{base}/viewer/.assets/")), "{js}");
    let version = js.rsplit_once("?v=").expect("version").1.to_owned();
    assert_eq!(version.len(), 16, "{version}");
    assert_eq!(
        template
            .replace("__HDFSTREAM_BASE__", base)
            .replace("__HDFSTREAM_VERSION__", &version),
        html
    );

    // Deep links (files, directories, objects in the query) serve the same page.
    for deep in [
        "viewer/snap_0000.hdf5",
        "viewer/a/b/c/",
        "viewer/dir%20with%20space/f.hdf5?path=/PartType0/Masses",
        "viewer/assets/viewer.js",
    ] {
        let answer = get(&format!("{url}/{deep}"), None);
        assert_eq!(answer.status, 200, "{deep}");
        assert_eq!(text(&answer), html, "{deep}");
    }

    // The assets: the built files, with their media types, cacheable for good under the
    // page's version, revalidated without it.
    for (asset_path, file, media) in [
        (&js, "assets/viewer.js", "text/javascript; charset=utf-8"),
        (&css, "assets/viewer.css", "text/css; charset=utf-8"),
    ] {
        let answer = get(&format!("{origin}{asset_path}"), None);
        assert_eq!(answer.status, 200, "{asset_path}");
        assert_eq!(answer.header("content-type"), Some(media));
        assert_eq!(
            answer.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.body, dist(file), "{asset_path} is {file}");
        // ureq asks for gzip and undoes it: the gzipped variant has its own tag.
        let etag = answer.header("etag").expect("an ETag").to_owned();
        assert_eq!(etag, format!("\"{version}-gz\""));

        // As sent: gzip when asked for it, the file's bytes otherwise, both varying by
        // Accept-Encoding.
        for (accept, gzipped) in [
            ("gzip", true),
            ("gzip, deflate, br", true),
            ("zstd;q=1, gzip;q=0.5", true),
            ("", false),
            ("identity", false),
            ("gzip;q=0", false),
            ("zstd", false),
        ] {
            let (head, body) = raw_get(&url, asset_path, accept);
            assert!(head.starts_with("http/1.1 200"), "{accept}: {head}");
            assert!(
                head.contains("\r\nvary: accept-encoding"),
                "{accept}: {head}"
            );
            if gzipped {
                assert!(
                    head.contains("\r\ncontent-encoding: gzip"),
                    "{accept}: {head}"
                );
                assert!(head.contains(&format!("etag: \"{version}-gz\"")), "{head}");
                assert!(
                    body.len() < dist(file).len() / 2,
                    "{accept}: {}",
                    body.len()
                );
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&body[..]),
                    &mut plain,
                )
                .expect("a valid gzip body");
                assert_eq!(
                    plain,
                    dist(file),
                    "{accept}: {asset_path} gunzipped is {file}"
                );
            } else {
                assert!(!head.contains("content-encoding"), "{accept}: {head}");
                assert!(head.contains(&format!("etag: \"{version}\"")), "{head}");
                assert_eq!(body, dist(file), "{accept}: {asset_path} is {file}");
            }
        }

        let unversioned = asset_path.split_once('?').expect("query").0;
        let answer = get(&format!("{origin}{unversioned}?v=0000"), None);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("cache-control"), Some("no-cache"));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        // HEAD: the headers of the GET, no body (without gzip, as ureq cannot undo an
        // empty gzip body).
        let resp = agent
            .head(&format!("{origin}{unversioned}"))
            .header("Accept-Encoding", "identity")
            .call()
            .expect("HEAD");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok()),
            Some(dist(file).len().to_string().as_str())
        );
        assert!(resp.into_body().read_to_vec().expect("no body").is_empty());
        let resp = agent
            .get(&format!("{origin}{unversioned}"))
            .header("If-None-Match", &etag)
            .call()
            .expect("GET");
        assert_eq!(resp.status().as_u16(), 304);
    }

    for missing in [
        "viewer/.assets/nope.js",
        "viewer/.assets/",
        "viewer/.assets/viewer.js/x",
        "viewer/.assets/Viewer.js",
    ] {
        let answer = get(&format!("{url}/{missing}"), None);
        assert_eq!(answer.status, 404, "{missing}");
        assert_eq!(
            answer.header("content-type"),
            Some("text/html;charset=UTF-8"),
            "{missing}"
        );
    }

    // A client that does not normalise `..` gets no file outside the list either.
    let status = http_common::raw_status(
        &url,
        "GET",
        &format!("{base}/viewer/.assets/../../msgpack/"),
        "",
        b"",
    );
    assert_eq!(status, 404);

    // `<base>/viewer` redirects to `<base>/viewer/` (a relative Location), query kept.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let resp = agent.get(&format!("{url}/viewer?x=1")).call().expect("GET");
    assert_eq!(resp.status().as_u16(), 308);
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("viewer/?x=1")
    );
    // Followed, it lands on the page.
    let followed = get(&format!("{url}/viewer"), None);
    assert_eq!(followed.status, 200);
    assert_eq!(text(&followed), html);

    // Only GET and HEAD.
    let status = http_common::raw_status(
        &url,
        "POST",
        &format!("{base}/viewer/"),
        "Content-Type: text/plain\r\n",
        b"x",
    );
    assert_eq!(status, 405);
    // The msgpack API still answers beside the viewer.
    let listing = get(&format!("{url}/msgpack/"), None);
    assert_eq!(listing.status, 200);
}

#[test]
fn the_viewer_is_served_under_the_default_base_path() {
    check_viewer("/hdfstream");
}

#[test]
fn the_viewer_follows_a_non_default_base_path() {
    check_viewer("/data/v1");
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = server(tmp.path(), "/data/v1");
    // Nothing of the viewer outside the base path.
    let origin = origin(srv.base_url());
    for outside in [
        "/hdfstream/viewer/",
        "/viewer/",
        "/viewer/.assets/viewer.js",
    ] {
        assert_eq!(
            get(&format!("{origin}{outside}"), None).status,
            404,
            "{outside}"
        );
    }
}

#[test]
fn the_viewer_is_served_at_the_root_with_an_empty_base_path() {
    check_viewer("");
}

/// A base path with characters that mean something in HTML is escaped in the page.
#[test]
fn the_base_path_is_html_escaped_in_the_page() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = server(tmp.path(), "/a&b");
    let page = get(&format!("{}/viewer/", srv.base_url()), None);
    assert_eq!(page.status, 200);
    let html = text(&page);
    assert!(
        html.contains("<meta name=\"hdfstream-base\" content=\"/a&amp;b\">"),
        "{html}"
    );
    let js = asset_url(&html, "viewer.js").replace("&amp;", "&");
    let answer = get(&format!("{}{js}", origin(srv.base_url())), None);
    assert_eq!(answer.status, 200, "{js}");
}
