//! The browser viewer (`<base>/viewer/`) in headless Chromium, driven through chromedriver
//! (WebDriver over HTTP), against our server on loopback serving the sample snapshot:
//!
//! * the directory listing shows the files of the served directory (names and sizes as on
//!   disk), and clicking the snapshot opens it in H5Web;
//! * `?path=/PartType0/Masses` shows H5Web's line view with the curve drawn (pixels of the
//!   WebGL canvas), and its Inspect tab the dataset's name, shape and type as libhdf5 reads
//!   them;
//! * `?path=/PartType0/Coordinates` shows the matrix view, whose cells (exact notation) are
//!   the values libhdf5 reads, and its shape.
//!
//! Screenshots go to `$CARGO_TARGET_DIR/test-artifacts/viewer/` (else `target/...`).
//! Skips with a message when chromium or chromedriver is absent, except under `CI=true`
//! (`scripts/setup.sh` installs both).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use hdf5_metno::File;
use hdf5_metno::datatype::ByteOrder;
use hdf5_metno::types::{FloatSize, IntSize, TypeDescriptor};
use hdfstream_server::sample::{SampleOptions, write_sample};
use hdfstream_server::{ServeConfig, ServerHandle};
use serde_json::{Value, json};

/// The key of a WebDriver element reference (W3C WebDriver).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a page may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(60);
/// The snapshot the sample writes (one file).
const SNAPSHOT: &str = "snap_0000.hdf5";

/// The first of `names` found in `PATH` or `/usr/bin`.
fn find_tool(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/bin"));
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|path| path.is_file())
}

/// Where screenshots are kept.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts/viewer");
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir
}

/// A chromedriver process and one headless Chromium session, both ended on drop.
struct Browser {
    driver: Child,
    session_url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium in headless mode through chromedriver; `None` (skip) when either is absent
    /// and `CI` is unset.
    fn start() -> Option<Self> {
        let chromium = find_tool(&["chromium", "chromium-browser"]);
        let driver = find_tool(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the browser test: run scripts/setup.sh (chromium, chromium-driver)"
            );
            println!("SKIP: chromium or chromedriver not found (run scripts/setup.sh)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut browser = Self {
            driver,
            session_url: String::new(),
            _profile: profile,
        };
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = ureq::get(&format!("{root}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Headless without a GPU: WebGL (H5Web's plots) through SwiftShader, which Chromium
        // only uses when asked to. No network beyond the loopback server: no first-run,
        // sync, component or background requests.
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--enable-unsafe-swiftshader".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let created = post(&format!("{root}/session"), &caps);
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"));
        browser.session_url = format!("{root}/session/{id}");
        browser.set_viewport(1280, 800);
        Some(browser)
    }

    /// Resize the window so that the page's viewport (and so the screenshots) is
    /// `width` x `height`.
    fn set_viewport(&self, width: i64, height: i64) {
        let rect = format!("{}/window/rect", self.session_url);
        post(&rect, &json!({ "width": width, "height": height }));
        let inner = self.eval("return [window.innerWidth, window.innerHeight];", &[]);
        let (w, h) = (inner[0].as_i64(), inner[1].as_i64());
        if let (Some(w), Some(h)) = (w, h)
            && (w, h) != (width, height)
        {
            post(
                &rect,
                &json!({ "width": 2 * width - w, "height": 2 * height - h }),
            );
        }
    }

    fn goto(&self, url: &str) {
        post(&format!("{}/url", self.session_url), &json!({ "url": url }));
    }

    /// Run `script` (a function body; `arguments` are `args`) in the page; its value.
    fn eval(&self, script: &str, args: &[Value]) -> Value {
        let answer = post(
            &format!("{}/execute/sync", self.session_url),
            &json!({ "script": script, "args": args }),
        );
        answer["value"].clone()
    }

    /// Poll `script` until it returns something other than `null`/`false`; that value.
    /// On timeout: a screenshot `<what>-timeout.png` and a failure naming `what`.
    fn wait_for(&self, what: &str, script: &str, args: &[Value]) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.eval(script, args);
            if !value.is_null() && value != json!(false) && value.get("error").is_none() {
                return value;
            }
            if Instant::now() > deadline {
                let slug: String = what
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                let shot = self.screenshot(&format!("timeout-{slug}"));
                let text = self.eval("return document.body.innerText.slice(0, 2000);", &[]);
                panic!(
                    "timed out waiting for {what} (last: {value}); screenshot {}; page text: {text}",
                    shot.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Click an element returned by `script` (a WebDriver click: real mouse events).
    fn click(&self, what: &str, script: &str, args: &[Value]) {
        let element = self.wait_for(what, script, args);
        let id = element[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: not an element: {element}"));
        post(
            &format!("{}/element/{id}/click", self.session_url),
            &json!({}),
        );
    }

    /// Save a screenshot of the window as `<name>.png` in the artifacts directory.
    fn screenshot(&self, name: &str) -> PathBuf {
        let answer = ureq::get(&format!("{}/screenshot", self.session_url))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .unwrap_or(Value::Null);
        let png = answer["value"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_default();
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session_url.is_empty() {
            let _ = ureq::delete(&self.session_url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// POST a JSON body to the WebDriver; the JSON answer (WebDriver errors fail the test).
fn post(url: &str, body: &Value) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .expect("WebDriver request");
    let status = resp.status();
    let text = resp.body_mut().read_to_string().expect("WebDriver answer");
    let value: Value = serde_json::from_str(&text).expect("WebDriver JSON answer");
    assert!(status.is_success(), "WebDriver {url}: {status} {value}");
    value
}

/// The sample snapshot (one file, 2000 gas particles) and `notes/README.txt` in a fresh
/// directory.
struct Served {
    _dir: tempfile::TempDir,
    root: PathBuf,
    server: ServerHandle,
}

/// The sample served under the base path `base_path`.
fn serve_sample(base_path: &str) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    let opts = SampleOptions {
        particles: 2000,
        files: 1,
        seed: 5,
    };
    write_sample(&root, &opts).expect("sample written");
    std::fs::create_dir_all(root.join("notes")).expect("mkdir");
    std::fs::write(root.join("notes/README.txt"), b"not HDF5\n").expect("write");
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.base_path = base_path.to_owned();
    let server = ServerHandle::start_with(config).expect("server");
    Served {
        _dir: dir,
        root,
        server,
    }
}

/// H5Web's description of an HDF5 type, from libhdf5's: `Float, 32-bit, little-endian`.
fn h5web_type(path: &Path, dataset: &str) -> String {
    let file = File::open(path).expect("open with libhdf5");
    let dtype = file
        .dataset(dataset)
        .and_then(|d| d.dtype())
        .expect("dataset type");
    let order = match dtype.byte_order() {
        ByteOrder::LittleEndian => "little-endian",
        ByteOrder::BigEndian => "big-endian",
        other => panic!("unexpected byte order {other:?}"),
    };
    let (class, bits) = match dtype.to_descriptor().expect("descriptor") {
        TypeDescriptor::Float(size) => (
            "Float",
            match size {
                FloatSize::U4 => 32,
                FloatSize::U8 => 64,
            },
        ),
        TypeDescriptor::Integer(size) | TypeDescriptor::Unsigned(size) => (
            "Integer",
            match size {
                IntSize::U1 => 8,
                IntSize::U2 => 16,
                IntSize::U4 => 32,
                IntSize::U8 => 64,
            },
        ),
        other => panic!("not a numeric type: {other:?}"),
    };
    format!("{class}, {bits}-bit, {order}")
}

fn dataset_shape(path: &Path, dataset: &str) -> Vec<usize> {
    let file = File::open(path).expect("open with libhdf5");
    file.dataset(dataset).expect("dataset").shape()
}

/// H5Web's Inspect table of the dataset shown: `{header: value}`.
fn inspect(browser: &Browser, dataset_path: &str) -> serde_json::Map<String, Value> {
    browser.click(
        "the Inspect tab",
        r#"return [...document.querySelectorAll('[role=tablist][aria-label="Viewer mode"] [role=tab]')]
               .find((t) => t.textContent.trim() === 'Inspect') ?? null;"#,
        &[],
    );
    let table = browser.wait_for(
        "the metadata table",
        r#"const rows = [...document.querySelectorAll('table tr')]
               .filter((r) => r.querySelector('th[scope=row]') && r.querySelector('td'));
           const map = Object.fromEntries(rows.map((r) =>
               [r.querySelector('th').textContent.trim(), r.querySelector('td').textContent.trim()]));
           return map.Path === arguments[0] ? map : null;"#,
        &[json!(dataset_path)],
    );
    table.as_object().cloned().expect("a map")
}

/// H5Web's Shape line: `10000`, or `10000 x 3 = 30000`.
fn h5web_shape(dims: &[usize]) -> String {
    let joined = dims
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" x ");
    if dims.len() > 1 {
        format!("{joined} = {}", dims.iter().product::<usize>())
    } else {
        joined
    }
}

/// Select the visualization tab `name` (Line, Matrix, ...) of the Display mode.
fn show_vis(browser: &Browser, name: &str) {
    browser.click(
        "the Display tab",
        r#"return [...document.querySelectorAll('[role=tablist][aria-label="Viewer mode"] [role=tab]')]
               .find((t) => t.textContent.trim() === 'Display') ?? null;"#,
        &[],
    );
    browser.click(
        &format!("the {name} tab"),
        r#"return [...document.querySelectorAll('[role=tablist][aria-label=Visualization] [role=tab]')]
               .find((t) => t.textContent.trim() === arguments[0]) ?? null;"#,
        &[json!(name)],
    );
    browser.wait_for(
        &format!("the {name} view selected"),
        r#"return [...document.querySelectorAll('[role=tablist][aria-label=Visualization] [role=tab]')]
               .some((t) => t.textContent.trim() === arguments[0]
                            && t.getAttribute('aria-selected') === 'true');"#,
        &[json!(name)],
    );
}

#[test]
fn the_listing_shows_the_served_files_and_opens_a_snapshot_in_h5web() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let served = serve_sample("/hdfstream");
    let mut on_disk: Vec<(String, u64)> = std::fs::read_dir(&served.root)
        .expect("read_dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().expect("type").is_file())
        .map(|e| {
            let size = e.metadata().expect("metadata").len();
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    on_disk.sort();
    assert!(on_disk.iter().any(|(n, _)| n == SNAPSHOT), "{on_disk:?}");

    browser.goto(&format!("{}/viewer/", served.server.base_url()));
    let rows = browser.wait_for(
        "the directory listing",
        r"const rows = [...document.querySelectorAll('tr.hs-file')];
          return rows.length ? rows.map((r) => [r.dataset.name, r.dataset.size]) : null;",
        &[],
    );
    let mut listed: Vec<(String, u64)> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let name = r[0].as_str().expect("name").to_owned();
            let size = r[1].as_str().and_then(|s| s.parse().ok()).expect("size");
            (name, size)
        })
        .collect();
    listed.sort();
    assert_eq!(listed, on_disk, "the listing's files are the directory's");
    let dirs = browser.eval(
        "return [...document.querySelectorAll('tr.hs-dir[data-name]')].map((r) => r.dataset.name);",
        &[],
    );
    assert_eq!(dirs, json!(["notes"]));
    browser.screenshot("listing");

    // A subdirectory, then back up, then the snapshot.
    browser.click(
        "the notes/ link",
        r#"return document.querySelector('tr.hs-dir[data-name="notes"] a');"#,
        &[],
    );
    browser.wait_for(
        "the notes/ listing",
        r"const rows = [...document.querySelectorAll('tr.hs-file')].map((r) => r.dataset.name);
          return rows.length === 1 && rows[0] === 'README.txt' && location.pathname.endsWith('/viewer/notes/');",
        &[],
    );
    // A file that is not HDF5 links to its download.
    let href = browser.eval(
        r#"return document.querySelector('tr.hs-file[data-name="README.txt"] a').href;"#,
        &[],
    );
    assert_eq!(
        href,
        json!(format!(
            "{}/download/notes/README.txt",
            served.server.base_url()
        ))
    );
    // A directory's deep link without its trailing slash lists it too (and gains the slash).
    browser.goto(&format!("{}/viewer/notes", served.server.base_url()));
    browser.wait_for(
        "the notes listing from a link without slash",
        r"const rows = [...document.querySelectorAll('tr.hs-file')].map((r) => r.dataset.name);
          return rows.length === 1 && rows[0] === 'README.txt' && location.pathname.endsWith('/viewer/notes/');",
        &[],
    );
    browser.click(
        "the root breadcrumb",
        "return document.querySelector('.hs-crumbs a');",
        &[],
    );
    browser.click(
        "the snapshot link",
        "return document.querySelector(`tr.hs-file[data-name=\"${arguments[0]}\"] a`);",
        &[json!(SNAPSHOT)],
    );
    // H5Web's explorer lists the file's root groups, as libhdf5 reads them.
    let file = File::open(served.root.join(SNAPSHOT)).expect("libhdf5 open");
    let groups = file.member_names().expect("members");
    assert!(groups.iter().any(|g| g == "PartType0"), "{groups:?}");
    browser.wait_for(
        "H5Web's explorer with the file's groups",
        r"const explorer = document.querySelector('.hs-app');
          if (!explorer || !location.pathname.endsWith('/viewer/' + arguments[0])) return null;
          const text = explorer.innerText.split('\n').map((l) => l.trim());
          return arguments[1].every((g) => text.includes(g));",
        &[json!(SNAPSHOT), json!(groups)],
    );
    browser.screenshot("snapshot");
}

#[test]
fn masses_show_a_line_plot_with_the_datasets_name_shape_and_type() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let served = serve_sample("/hdfstream");
    let path = served.root.join(SNAPSHOT);
    let dims = dataset_shape(&path, "PartType0/Masses");
    assert_eq!(dims.len(), 1);
    browser.goto(&format!(
        "{}/viewer/{SNAPSHOT}?path=/PartType0/Masses",
        served.server.base_url()
    ));
    show_vis(&browser, "Line");
    // The title is the dataset's name; the dimension mapper shows its length.
    browser.wait_for(
        "the line plot's title and length",
        r"const text = document.querySelector('.hs-app')?.innerText ?? '';
          const lines = text.split('\n').map((l) => l.trim());
          return lines.includes('Masses') && lines.includes(arguments[0]);",
        &[json!(dims[0].to_string())],
    );
    // The curve is drawn: pixels of the WebGL canvas in the line's colour (dark blue).
    let drawn = browser.wait_for(
        "the curve drawn on the canvas",
        r"const canvas = document.querySelector('.hs-app canvas');
          if (!canvas || !canvas.width) return null;
          const copy = document.createElement('canvas');
          copy.width = canvas.width; copy.height = canvas.height;
          const ctx = copy.getContext('2d');
          ctx.drawImage(canvas, 0, 0);
          const px = ctx.getImageData(0, 0, copy.width, copy.height).data;
          let line = 0;
          for (let i = 0; i < px.length; i += 4) {
            if (px[i + 3] > 128 && px[i + 2] > 100 && px[i] < 80 && px[i + 1] < 80) line += 1;
          }
          return line > copy.width * copy.height / 100 ? [line, copy.width * copy.height] : null;",
        &[],
    );
    println!("line pixels / canvas pixels: {drawn}");
    browser.screenshot("masses-line");

    let table = inspect(&browser, "/PartType0/Masses");
    assert_eq!(table["Name"], json!("Masses"), "{table:?}");
    assert_eq!(table["Shape"], json!(h5web_shape(&dims)), "{table:?}");
    assert_eq!(
        table["Type"],
        json!(h5web_type(&path, "PartType0/Masses")),
        "{table:?}"
    );
    browser.screenshot("masses-inspect");
}

#[test]
fn coordinates_show_a_matrix_of_the_values_libhdf5_reads() {
    let Some(browser) = Browser::start() else {
        return;
    };
    // Under a base path of two segments: the page, its assets and both APIs follow it.
    let served = serve_sample("/data/v1");
    assert!(served.server.base_url().ends_with("/data/v1"));
    let path = served.root.join(SNAPSHOT);
    let file = File::open(&path).expect("libhdf5 open");
    let truth = file
        .dataset("PartType0/Coordinates")
        .and_then(|d| d.read_2d::<f64>())
        .expect("read Coordinates");
    let dims = truth.shape().to_vec();
    browser.goto(&format!(
        "{}/viewer/{SNAPSHOT}?path=/PartType0/Coordinates",
        served.server.base_url()
    ));
    show_vis(&browser, "Matrix");
    browser.wait_for(
        "the matrix",
        "return document.querySelectorAll('.hs-app [role=grid] [role=gridcell]').length >= 30;",
        &[],
    );
    browser.screenshot("coordinates-matrix");
    browser.click(
        "the Exact notation",
        r"return [...document.querySelectorAll('[role=radio]')]
               .find((b) => b.textContent.trim() === 'Exact') ?? null;",
        &[],
    );
    browser.wait_for(
        "the Exact notation selected",
        r"return [...document.querySelectorAll('[role=radio]')]
               .some((b) => b.textContent.trim() === 'Exact' && b.getAttribute('aria-checked') === 'true');",
        &[],
    );
    // The grid's size is the dataset's shape; its cells (the rendered rows) its values, in
    // full (the shortest text that reads back as the same double).
    let cells = browser.wait_for(
        "the matrix cells in exact notation",
        r"const grid = document.querySelector('.hs-app [role=grid]');
          if (!grid) return null;
          const cells = [...grid.querySelectorAll('[role=row][aria-rowindex] [role=gridcell]')]
            .map((c) => [Number(c.parentElement.getAttribute('aria-rowindex')),
                         Number(c.getAttribute('aria-colindex')), c.textContent.trim()]);
          if (cells.length < 30 || cells.some((c) => !/^-?[0-9.]+(e[-+]?[0-9]+)?$/.test(c[2]))) return null;
          return { rows: grid.getAttribute('aria-rowcount'), cols: grid.getAttribute('aria-colcount'), cells };",
        &[],
    );
    assert_eq!(cells["rows"], json!(dims[0].to_string()), "{cells}");
    assert_eq!(cells["cols"], json!(dims[1].to_string()), "{cells}");
    let cells = cells["cells"].as_array().expect("cells");
    let mut first_row_seen = false;
    for cell in cells {
        let row = cell[0].as_u64().expect("row index") as usize;
        let col = cell[1].as_u64().expect("col index") as usize;
        let text = cell[2].as_str().expect("cell text");
        let shown: f64 = text.parse().expect("a number");
        let expected = truth[[row - 1, col - 1]];
        assert_eq!(
            shown, expected,
            "cell ({row}, {col}) shows {text}, libhdf5 reads {expected}"
        );
        first_row_seen |= row == 1;
    }
    assert!(first_row_seen, "the first row is shown");

    let table = inspect(&browser, "/PartType0/Coordinates");
    assert_eq!(table["Name"], json!("Coordinates"), "{table:?}");
    assert_eq!(table["Shape"], json!(h5web_shape(&dims)), "{table:?}");
    assert_eq!(
        table["Type"],
        json!(h5web_type(&path, "PartType0/Coordinates")),
        "{table:?}"
    );
}
