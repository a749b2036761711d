//! What the examples share: the server and files to read, from the command line
//! (`URL FILE_OR_GLOB`) or, without arguments, a sample snapshot served by the embedded
//! server for as long as the returned value lives.

use hdfstream_server::http::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};

/// The server URL and the file (or glob) to read, and what keeps them alive.
pub(crate) struct Target {
    /// Server base URL, e.g. `http://127.0.0.1:8080/hdfstream`.
    pub(crate) url: String,
    /// Virtual path of a file, or a glob over file names.
    pub(crate) files: String,
    _server: Option<(ServerHandle, tempfile::TempDir)>,
}

/// `URL FILE_OR_GLOB` from the command line, or a 4-file sample of `particles` gas particles
/// on the embedded server (`files` is then the glob over the 4 files).
pub(crate) fn target(particles: u64) -> Result<Target, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [url, files] = args.as_slice() {
        return Ok(Target {
            url: url.clone(),
            files: files.clone(),
            _server: None,
        });
    }
    if !args.is_empty() {
        return Err("usage: EXAMPLE [URL FILE_OR_GLOB]".into());
    }
    let dir = tempfile::tempdir()?;
    let options = SampleOptions {
        particles,
        files: 4,
        seed: 42,
    };
    write_sample(dir.path(), &options)?;
    let server = ServerHandle::start(dir.path())?;
    println!("serving a sample snapshot at {}", server.base_url());
    Ok(Target {
        url: server.base_url().to_owned(),
        files: "snap_0000.*.hdf5".into(),
        _server: Some((server, dir)),
    })
}
