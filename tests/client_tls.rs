//! TLS: certificates are verified by default; `with_allow_invalid_certificates(true)`
//! accepts a self-signed test server. Uses the embedded `hdfstream-server` over HTTPS.

use hdfstream::{ClientBuilder, Error, RetryConfig};
use hdfstream_server::{ServeConfig, ServerHandle, TlsConfig};

#[test]
fn self_signed_certificate_is_rejected_unless_allowed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(root.join("hello.txt"), b"over tls").expect("write");
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert file");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key file");
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.tls = Some(TlsConfig { cert, key });
    let server = ServerHandle::start_with(config).expect("server");
    assert!(
        server.base_url().starts_with("https://"),
        "{}",
        server.base_url()
    );

    let err = ClientBuilder::new()
        .with_url(server.base_url())
        .with_retry(RetryConfig::none())
        .build()
        .expect_err("untrusted certificate");
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    // The message carries the TLS cause, not just "error sending request".
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    let conn = ClientBuilder::new()
        .with_url(server.base_url())
        .with_retry(RetryConfig::none())
        .with_allow_invalid_certificates(true)
        .build()
        .expect("probe over TLS");
    let mut out = Vec::new();
    assert_eq!(conn.download("hello.txt", &mut out).expect("download"), 8);
    assert_eq!(out, b"over tls");
}
