//! HTTPS with a certificate and key given as PEM files.

mod http_common;

use std::time::Duration;

use hdfstream_server::{ServeConfig, ServerHandle, TlsConfig};

#[test]
fn serves_https_with_pem_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(root.join("hello.txt"), b"over tls").expect("write");
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let cert = tmp.path().join("cert.pem");
    let key = tmp.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("cert file");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key file");

    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.tls = Some(TlsConfig { cert, key });
    let srv = ServerHandle::start_with(config).expect("server");
    assert!(
        srv.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        srv.base_url()
    );

    let trusted = ureq::tls::Certificate::from_der(certified.cert.der()).to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[trusted]))
                .build(),
        )
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut resp = agent
        .get(&format!("{}/download/hello.txt", srv.base_url()))
        .call()
        .expect("https request");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.body_mut().read_to_vec().expect("body"), b"over tls");

    // Plain HTTP on the TLS port does not get a response body.
    let plain = http_common::host_port(srv.base_url());
    let refused = ureq::get(&format!("http://{plain}/hdfstream/download/hello.txt")).call();
    assert!(refused.is_err() || refused.is_ok_and(|r| r.status().as_u16() != 200));
}

#[test]
fn missing_pem_files_fail_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = ServeConfig::new(tmp.path());
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.tls = Some(TlsConfig {
        cert: tmp.path().join("missing-cert.pem"),
        key: tmp.path().join("missing-key.pem"),
    });
    let started = ServerHandle::start_with(config);
    assert!(
        matches!(started, Err(hdfstream_server::ServerError::Tls { .. })),
        "{started:?}"
    );
}
