//! `ClientBuilder::from_env`. Alone in its test binary because it changes the process
//! environment.

#[allow(dead_code)] // each test crate uses a subset of the helpers
mod support;

use hdfstream::ClientBuilder;
use support::cassette::synthetic_root_listing;
use support::http::{MockResponse, MockServer};

#[test]
fn from_env_reads_url_user_and_password() {
    let server = MockServer::start(|_| {
        MockResponse::new(200, "application/x-msgpack", synthetic_root_listing())
    });
    // SAFETY: this binary has a single test, so no other thread reads the environment.
    unsafe {
        std::env::set_var("HDFSTREAM_URL", format!("{}/hdfstream", server.url()));
        std::env::set_var("HDFSTREAM_USER", "envuser");
        std::env::set_var("HDFSTREAM_PASSWORD", "envpass");
    }
    let b = ClientBuilder::from_env();
    assert!(!format!("{b:?}").contains("envpass"));
    let c = b.build().expect("probe");
    assert_eq!(c.base_url(), format!("{}/hdfstream", server.url()));
    assert_eq!(c.user(), Some("envuser"));
    // base64("envuser:envpass")
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Basic ZW52dXNlcjplbnZwYXNz")
    );
    // Empty variables count as unset.
    // SAFETY: as above.
    unsafe {
        std::env::set_var("HDFSTREAM_URL", "");
    }
    let err = ClientBuilder::from_env().build().expect_err("no url");
    assert!(err.to_string().contains("HDFSTREAM_URL"), "{err}");
}
