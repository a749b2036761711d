//! Embedding the server in a program: `cargo run -p hdfstream-server --example embed [DIR]`.
//!
//! Serves DIR (default: a freshly written sample snapshot) on a free loopback port with a
//! tighter request limit, answers one directory listing from a plain TCP client to show the
//! protocol at work, prints the request log, and stops the server. Pass `--wait` after DIR
//! to keep serving until Ctrl-C instead.

use std::io::{Read, Write};
use std::net::TcpStream;

use hdfstream_server::ServeConfig;
use hdfstream_server::http::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wait = args.iter().any(|a| a == "--wait");
    let sample = tempfile::tempdir()?;
    let root = match args.iter().find(|a| !a.starts_with("--")) {
        Some(dir) => dir.into(),
        None => {
            let options = SampleOptions {
                particles: 10_000,
                ..SampleOptions::default()
            };
            write_sample(sample.path(), &options)?;
            sample.path().to_path_buf()
        }
    };

    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse()?; // a free port
    config.limits.max_requests_per_client = 8; // concurrent requests per client before 429
    let server = ServerHandle::start_with(config)?;
    println!("serving {} at {}", root.display(), server.base_url());
    if wait {
        println!("Ctrl-C to stop");
        loop {
            std::thread::park(); // the server runs on its own threads
        }
    }

    // GET {base}/msgpack/ answers the root directory as messagepack.
    let base = server.base_url().trim_start_matches("http://");
    let (host, path) = base.split_once('/').ok_or("unexpected base URL")?;
    let mut tcp = TcpStream::connect(host)?;
    write!(
        tcp,
        "GET /{path}/msgpack/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer)?;
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    println!("GET /{path}/msgpack/ -> {status} ({} bytes)", answer.len());

    for record in server.log().snapshot() {
        println!("request log: {} {}", record.method, record.path);
    }
    Ok(())
}
