//! The browser viewer at `<base>/viewer/`: H5Web over the `/h5grove` endpoint for HDF5
//! files, and a directory listing over `/msgpack` (the single-page app built from `viewer/`
//! into `server/viewer-dist/` by `scripts/build_viewer.sh`, embedded here).
//!
//! * `<base>/viewer` redirects to `<base>/viewer/`;
//! * `<base>/viewer/.assets/<name>` is an embedded asset (the script and the style sheet);
//!   the prefix starts with `.`, which no virtual path can (hidden names are never served),
//!   so a served directory of any name has its deep link;
//! * anything else under `<base>/viewer/` is `index.html`, in which the server's base path
//!   and the assets' version are put in place of the placeholders: the app reads the base
//!   path from `<meta name="hdfstream-base">` and the virtual path from the URL.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::compress::negotiate;
use super::handlers::rest_of;
use super::respond::{escape_html, html_error};
use crate::config::ContentCoding;

/// The page template: [`BASE_PLACEHOLDER`] and [`VERSION_PLACEHOLDER`] are put in place.
const INDEX_TEMPLATE: &str = include_str!("../../viewer-dist/index.html");
/// What the server's base path (HTML-escaped) replaces in [`INDEX_TEMPLATE`].
const BASE_PLACEHOLDER: &str = "__HDFSTREAM_BASE__";
/// What the assets' version (see [`assets_version`]) replaces in [`INDEX_TEMPLATE`].
const VERSION_PLACEHOLDER: &str = "__HDFSTREAM_VERSION__";
/// The URL folder of the assets under `<base>/viewer/`.
const ASSETS_PREFIX: &str = ".assets/";

/// One embedded file of the bundle.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// The bundle's assets (fixed names, see `viewer/vite.config.js`).
const ASSETS: [Asset; 2] = [
    Asset {
        name: "viewer.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../viewer-dist/assets/viewer.js"),
    },
    Asset {
        name: "viewer.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../viewer-dist/assets/viewer.css"),
    },
];

/// Cache policy of an asset asked for with the current version: it never changes.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache policy of the page and of assets asked for without the version: revalidate.
const CACHE_REVALIDATE: &str = "no-cache";

/// The assets gzipped at the highest level (made once, at the first request that accepts
/// gzip); `None` for an asset whose compression failed, which then goes out as it is. The
/// script is 1.5 MB and about 0.43 MB gzipped: a second less at 10 Mbit/s.
fn gzipped() -> &'static [Option<Vec<u8>>] {
    static GZIPPED: OnceLock<Vec<Option<Vec<u8>>>> = OnceLock::new();
    GZIPPED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                use std::io::Write as _;
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                let gz = encoder
                    .write_all(asset.bytes)
                    .and_then(|()| encoder.finish());
                gz.inspect_err(|error| {
                    tracing::warn!(asset = asset.name, %error, "cannot gzip a viewer asset");
                })
                .ok()
            })
            .collect()
    })
}

/// The first 16 hex digits of the SHA-256 of all assets: asset URLs carry it (`?v=`), so
/// browsers may keep an asset for good and still load a new bundle after an upgrade.
fn assets_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        for asset in &ASSETS {
            hash.update(asset.name.as_bytes());
            hash.update((asset.bytes.len() as u64).to_le_bytes());
            hash.update(asset.bytes);
        }
        hash.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// `index.html` for a server whose base path is `base_path` (`""` or `/a/b`).
pub(crate) fn index_html(base_path: &str) -> String {
    INDEX_TEMPLATE
        .replace(BASE_PLACEHOLDER, &escape_html(base_path))
        .replace(VERSION_PLACEHOLDER, assets_version())
}

/// GET `<base>/viewer`: a redirect to `<base>/viewer/` (relative, so the base path and any
/// proxy in front need not be known), keeping the query.
pub(crate) async fn redirect(uri: Uri) -> Response {
    let location = match uri.query() {
        Some(query) => format!("viewer/?{query}"),
        None => "viewer/".to_owned(),
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, value)]).into_response(),
        Err(_) => html_error(StatusCode::BAD_REQUEST, "Invalid query string"),
    }
}

/// GET `<base>/viewer/` and `<base>/viewer/<rest>`: an asset, or the page.
pub(crate) async fn page(
    axum::extract::State(state): axum::extract::State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let rest = rest_of(&uri, "viewer");
    match rest.strip_prefix(ASSETS_PREFIX) {
        Some(name) => asset(name, uri.query(), &headers),
        None => {
            let mut resp = index_html(&state.base_path).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_REVALIDATE),
            );
            resp
        }
    }
}

/// The asset `name`, gzipped when the request accepts gzip: immutable when asked for with
/// the current version, else revalidated with its ETag (304 when `If-None-Match` has it);
/// 404 for a name not in the bundle.
fn asset(name: &str, query: Option<&str>, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return html_error(StatusCode::NOT_FOUND, "No such viewer asset");
    };
    let asset = &ASSETS[index];
    let gzip = negotiate(headers, &[ContentCoding::Gzip])
        .and_then(|_| gzipped().get(index))
        .and_then(Option::as_deref);
    let version = assets_version();
    let etag = match gzip {
        Some(_) => format!("\"{version}-gz\""),
        None => format!("\"{version}\""),
    };
    let current = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .any(|pair| pair.strip_prefix("v=") == Some(version));
    let cache = if current {
        CACHE_IMMUTABLE
    } else {
        CACHE_REVALIDATE
    };
    let matched = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    let mut resp = if matched {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        gzip.unwrap_or(asset.bytes).into_response()
    };
    let h = resp.headers_mut();
    if !matched {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        if gzip.is_some() {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, BASE_PLACEHOLDER, INDEX_TEMPLATE, VERSION_PLACEHOLDER, index_html};

    #[test]
    fn the_template_names_every_asset_and_both_placeholders() {
        assert!(INDEX_TEMPLATE.contains(BASE_PLACEHOLDER));
        assert!(INDEX_TEMPLATE.contains(VERSION_PLACEHOLDER));
        for asset in &ASSETS {
            let url = format!("{BASE_PLACEHOLDER}/viewer/.assets/{}?v=", asset.name);
            assert!(INDEX_TEMPLATE.contains(&url), "{url} not in index.html");
        }
    }

    #[test]
    fn the_base_path_is_escaped_into_the_page() {
        let page = index_html("/a\"<b");
        assert!(page.contains("content=\"/a&quot;&lt;b\""), "{page}");
        assert!(!page.contains(BASE_PLACEHOLDER));
        assert!(!page.contains(VERSION_PLACEHOLDER));
    }
}
