//! Credentials on the command line against a server with a users file: the hidden password
//! prompt on a terminal (a pseudo-terminal driven by Python's `pty`), the refusal to send a
//! silent empty password, and the exit status of a refused login.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::LazyLock;

use hdfstream_server::{ServeConfig, ServerHandle, hash_password};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse";

struct Site {
    server: ServerHandle,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

static SITE: LazyLock<Site> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    std::fs::write(root.join("data/notes.txt"), "some notes\n").expect("write");
    let users = dir.path().join("users");
    let hash = hash_password(PASSWORD).expect("hash");
    std::fs::write(&users, format!("{USER}:{hash}:readers\n")).expect("users");
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.users = Some(users);
    let server = ServerHandle::start_with(config).expect("server");
    Site {
        server,
        root,
        _dir: dir,
    }
});

fn hdfstream(args: &[&str], password_env: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hdfstream"));
    cmd.args(args)
        .env_remove("HDFSTREAM_USER")
        .env_remove("HDFSTREAM_PASSWORD")
        .env_remove("HDFSTREAM_URL")
        .stdin(Stdio::null());
    if let Some(p) = password_env {
        cmd.env("HDFSTREAM_PASSWORD", p);
    }
    cmd.output().expect("run hdfstream")
}

#[test]
fn a_missing_password_off_a_terminal_is_a_usage_error_not_an_empty_password() {
    let url = SITE.server.base_url();
    let out = hdfstream(&["ls", url, "data", "--user", USER], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a password"), "{err}");
    // The right password from the environment works; a wrong one is an auth failure (4).
    let out = hdfstream(&["ls", url, "data", "--user", USER], Some(PASSWORD));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("notes.txt"));
    let out = hdfstream(&["ls", url, "data", "--user", USER], Some("wrong"));
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A password without a user is refused too.
    let out = hdfstream(&["ls", url, "data"], Some(PASSWORD));
    assert_eq!(out.status.code(), Some(2));
}

/// Runs `hdfstream ls URL data --user alice` on a pseudo-terminal, types `typed` at the
/// prompt, and returns (exit status, everything the terminal showed).
fn on_a_terminal(typed: &str) -> (i32, String) {
    let script = r#"
import os, pty, sys
binary, url, user, typed = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.environ.pop("HDFSTREAM_PASSWORD", None)
    os.environ.pop("HDFSTREAM_URL", None)
    os.execv(binary, [binary, "ls", url, "data", "--user", user])
seen = b""
def read_some():
    global seen
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        return False
    seen += chunk
    return bool(chunk)
while b"Password" not in seen and read_some():
    pass
# Type only once the prompt has turned the terminal's echo off (it must, within 10 s).
import termios, time
deadline = time.time() + 10
while termios.tcgetattr(fd)[3] & termios.ECHO and time.time() < deadline:
    time.sleep(0.01)
os.write(fd, typed.encode() + b"\r")
while read_some():
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(str(os.waitstatus_to_exitcode(status)) + "\n")
sys.stdout.write(seen.decode("utf-8", "replace"))
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            env!("CARGO_BIN_EXE_hdfstream"),
            SITE.server.base_url(),
            USER,
            typed,
        ])
        .output()
        .expect("run python3 with a pseudo-terminal");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, shown) = text.split_once('\n').expect("status line");
    (code.trim().parse().expect("exit code"), shown.to_owned())
}

#[test]
fn a_terminal_asks_for_the_password_without_echoing_it() {
    let (code, shown) = on_a_terminal(PASSWORD);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains(&format!("Password for {USER}")), "{shown}");
    assert!(
        !shown.contains(PASSWORD),
        "the password was echoed: {shown}"
    );
    let size = std::fs::metadata(SITE.root.join("data/notes.txt"))
        .expect("stat")
        .len();
    let line = shown
        .lines()
        .find(|l| l.trim_end().ends_with("notes.txt"))
        .unwrap_or_else(|| panic!("no listing in {shown}"));
    assert!(line.trim_start().starts_with(&size.to_string()), "{line}");
    // A wrong password typed at the prompt is refused by the server (4); an empty one is
    // refused before anything is sent (2).
    assert_eq!(on_a_terminal("not it").0, 4);
    assert_eq!(on_a_terminal("").0, 2);
}
