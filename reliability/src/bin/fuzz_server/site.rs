//! The served tree the fuzzer makes, and what it knows about it independently of the
//! server: the virtual namespace (which paths exist, which are hidden, restricted or leave
//! the root) as it was built, and the HDF5 objects of its files as libhdf5 reads them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use hdfstream_reliability::ToolError;

/// Users of the users file: name, password, roles.
pub(crate) const USERS: [(&str, &str, &str); 2] = [
    ("alice", "wonderland", "restricted-access"),
    ("bob", "builder", "other"),
];
/// Role the `restricted/` tree needs (alice has it, bob does not).
const RESTRICTED_ROLE: &str = "restricted-access";
/// Gas particles of the sample (dark matter as many, stars a tenth).
pub(crate) const PARTICLES: u64 = 1000;

/// Who may see a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Everyone.
    Open,
    /// Users holding [`RESTRICTED_ROLE`].
    Restricted,
    /// Nobody (a role no user has).
    Denied,
}

/// A visible entry of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A directory.
    Dir,
    /// A file; `hdf5` indexes [`Site::files`] for the HDF5 files, `h5_name` tells whether its
    /// name gives it the HDF5 media type (`.hdf5`, `.h5`).
    File { hdf5: Option<usize>, h5_name: bool },
    /// A symlink inside the root to another visible path (segments from the root).
    Alias(Vec<String>),
}

/// What an HDF5 object name opens in a file (as libhdf5 sees it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Object {
    /// Nothing (or a dangling link).
    Missing,
    /// A group.
    Group,
    /// A dataset of this shape (`[]` for a scalar).
    Dataset(Vec<u64>),
    /// A named datatype.
    Other,
}

/// One HDF5 file of the tree as libhdf5 reads it.
pub(crate) struct H5 {
    file: hdf5_metno::File,
    /// Answers already looked up (bounded).
    cache: Mutex<HashMap<String, Object>>,
}

/// The tree and its truth.
pub(crate) struct Site {
    /// The served root.
    pub(crate) root: PathBuf,
    /// Visible entries by virtual path (segments joined by `/`, `""` for the root).
    entries: HashMap<String, (Kind, Access)>,
    /// Every virtual path of the tree (visible or not), for the generator.
    pub(crate) paths: Vec<Vec<String>>,
    /// The distinct HDF5 files.
    pub(crate) files: Vec<H5>,
    /// Objects of each file: name and what it is.
    pub(crate) objects: Vec<Vec<(String, Object)>>,
}

fn io(what: &str, path: &Path) -> impl Fn(std::io::Error) -> ToolError {
    let text = format!("{what} {}", path.display());
    move |e| ToolError::new(format!("{text}: {e}"))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ToolError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
    }
    std::fs::write(path, bytes).map_err(io("cannot write", path))
}

fn symlink(target: &str, link: &Path) -> Result<(), ToolError> {
    std::os::unix::fs::symlink(target, link).map_err(io("cannot link", link))
}

/// `hdfstream serve --hash-password` of `password`.
fn hash(binary: &Path, password: &str) -> Result<String, ToolError> {
    use std::io::Write;
    let mut child = Command::new(binary)
        .args(["serve", "--hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(io("cannot run", binary))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}").map_err(io("cannot write to", binary))?;
    }
    let out = child.wait_with_output().map_err(io("cannot run", binary))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !text.starts_with("$argon2") {
        return Err(ToolError::new(format!("password hash failed: {text:?}")));
    }
    Ok(text)
}

impl Site {
    /// Make the tree under `dir` with `binary sample` and open its HDF5 files.
    ///
    /// ```text
    /// root/sample/{snap_0000,halos_0000}.hdf5, notes.txt   the sample
    /// root/nested/a/b/c/deep.h5, nested/a/README          sub-directories
    /// root/données/ß.hdf5, root/with space & 100%/x.txt   names that need encoding
    /// root/empty/, root/bad/text.hdf5 (not HDF5)
    /// root/.hidden/secret.txt                              hidden
    /// root/restricted/{data.hdf5, sub/x.txt}               alice only
    /// root/denied/x.txt                                    nobody
    /// root/links/inside.hdf5 -> ../sample/snap_0000.hdf5   inside the root
    /// root/links/up -> ..                                  back to the root
    /// root/links/{hid -> ../.hidden, escape -> /etc, escape.txt -> ../../outside.txt}
    /// ```
    pub(crate) fn create(dir: &Path, binary: &Path) -> Result<Site, ToolError> {
        let root = dir.join("root");
        let sample = root.join("sample");
        std::fs::create_dir_all(&sample).map_err(io("cannot create", &sample))?;
        let status = Command::new(binary)
            .arg("sample")
            .arg(&sample)
            .args(["--particles", &PARTICLES.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(io("cannot run", binary))?;
        if !status.success() {
            return Err(ToolError::new(format!(
                "{} sample failed",
                binary.display()
            )));
        }
        let snap = sample.join("snap_0000.hdf5");
        let halos = sample.join("halos_0000.hdf5");
        let halo_bytes = std::fs::read(&halos).map_err(io("cannot read", &halos))?;
        write(&sample.join("notes.txt"), b"sample notes\n")?;
        write(&root.join("nested/a/b/c/deep.h5"), &halo_bytes)?;
        write(&root.join("nested/a/README"), b"read me\n")?;
        write(&root.join("données/ß.hdf5"), &halo_bytes)?;
        write(&root.join("with space & 100%/x.txt"), b"x\n")?;
        std::fs::create_dir_all(root.join("empty")).map_err(io("cannot create", &root))?;
        write(&root.join("bad/text.hdf5"), b"not an HDF5 file\n")?;
        write(&root.join(".hidden/secret.txt"), b"hidden secret\n")?;
        write(&root.join("restricted/data.hdf5"), &halo_bytes)?;
        write(&root.join("restricted/sub/x.txt"), b"restricted\n")?;
        write(&root.join("denied/x.txt"), b"denied\n")?;
        write(&dir.join("outside.txt"), b"outside the root\n")?;
        let links = root.join("links");
        std::fs::create_dir_all(&links).map_err(io("cannot create", &links))?;
        symlink("../sample/snap_0000.hdf5", &links.join("inside.hdf5"))?;
        symlink("..", &links.join("up"))?;
        symlink("../.hidden", &links.join("hid"))?;
        symlink("/etc", &links.join("escape"))?;
        symlink("../../outside.txt", &links.join("escape.txt"))?;

        let mut users = String::new();
        for (name, password, roles) in USERS {
            users.push_str(&format!("{name}:{}:{roles}\n", hash(binary, password)?));
        }
        write(&dir.join("users"), users.as_bytes())?;
        write(
            &dir.join("access"),
            format!("restricted {RESTRICTED_ROLE}\ndenied nobody-has-this\n").as_bytes(),
        )?;

        // The truth: every visible path, as built above.
        use Access::{Denied, Open, Restricted};
        let file = |hdf5: Option<usize>, h5_name: bool| Kind::File { hdf5, h5_name };
        let alias = |to: &str| Kind::Alias(to.split('/').map(str::to_owned).collect());
        let visible: Vec<(&str, Kind, Access)> = vec![
            ("", Kind::Dir, Open),
            ("sample", Kind::Dir, Open),
            ("sample/snap_0000.hdf5", file(Some(0), true), Open),
            ("sample/halos_0000.hdf5", file(Some(1), true), Open),
            ("sample/notes.txt", file(None, false), Open),
            ("nested", Kind::Dir, Open),
            ("nested/a", Kind::Dir, Open),
            ("nested/a/README", file(None, false), Open),
            ("nested/a/b", Kind::Dir, Open),
            ("nested/a/b/c", Kind::Dir, Open),
            ("nested/a/b/c/deep.h5", file(Some(2), true), Open),
            ("données", Kind::Dir, Open),
            ("données/ß.hdf5", file(Some(3), true), Open),
            ("with space & 100%", Kind::Dir, Open),
            ("with space & 100%/x.txt", file(None, false), Open),
            ("empty", Kind::Dir, Open),
            ("bad", Kind::Dir, Open),
            ("bad/text.hdf5", file(None, true), Open),
            ("restricted", Kind::Dir, Restricted),
            ("restricted/data.hdf5", file(Some(4), true), Restricted),
            ("restricted/sub", Kind::Dir, Restricted),
            ("restricted/sub/x.txt", file(None, false), Restricted),
            ("denied", Kind::Dir, Denied),
            ("denied/x.txt", file(None, false), Denied),
            ("links", Kind::Dir, Open),
            ("links/inside.hdf5", alias("sample/snap_0000.hdf5"), Open),
            ("links/up", Kind::Alias(Vec::new()), Open),
        ];
        let hidden = [
            ".hidden",
            ".hidden/secret.txt",
            "links/hid",
            "links/hid/secret.txt",
            "links/escape",
            "links/escape/passwd",
            "links/escape.txt",
            "missing",
            "sample/missing.hdf5",
            "links/up/restricted/data.hdf5",
            "links/up/links/up/sample/snap_0000.hdf5",
        ];
        let split = |p: &str| -> Vec<String> {
            if p.is_empty() {
                Vec::new()
            } else {
                p.split('/').map(str::to_owned).collect()
            }
        };
        let paths = visible
            .iter()
            .map(|(p, ..)| split(p))
            .chain(hidden.iter().map(|p| split(p)))
            .collect();
        let entries = visible
            .into_iter()
            .map(|(p, kind, access)| (p.to_owned(), (kind, access)))
            .collect();
        let files = [
            snap.clone(),
            halos.clone(),
            root.join("nested/a/b/c/deep.h5"),
            root.join("données/ß.hdf5"),
            root.join("restricted/data.hdf5"),
        ]
        .iter()
        .map(|p| H5::open(p))
        .collect::<Result<Vec<_>, _>>()?;
        let objects = files.iter().map(H5::walk).collect::<Result<Vec<_>, _>>()?;
        Ok(Site {
            root,
            entries,
            paths,
            files,
            objects,
        })
    }

    /// What the virtual path `segments` (decoded, valid segments) names, following aliases,
    /// with the strictest access met on the way (virtual and target path); `None` when it
    /// does not exist or is not visible.
    pub(crate) fn resolve(&self, segments: &[String]) -> Option<(Kind, Access)> {
        let mut current: Vec<String> = Vec::new();
        let mut access = Access::Open;
        for (hops, seg) in segments.iter().enumerate() {
            if hops > 256 {
                return None;
            }
            current.push(seg.clone());
            let (kind, a) = self.entries.get(&current.join("/"))?;
            access = strictest(access, *a);
            if let Kind::Alias(to) = kind {
                current.clone_from(to);
                let (_, target_access) = self.entries.get(&current.join("/"))?;
                access = strictest(access, *target_access);
            }
        }
        let (kind, a) = self.entries.get(&current.join("/"))?;
        Some((kind.clone(), strictest(access, *a)))
    }
}

fn strictest(a: Access, b: Access) -> Access {
    use Access::{Denied, Open, Restricted};
    match (a, b) {
        (Denied, _) | (_, Denied) => Denied,
        (Restricted, _) | (_, Restricted) => Restricted,
        (Open, Open) => Open,
    }
}

/// Most names an [`H5`] remembers.
const CACHE_LIMIT: usize = 50_000;

impl H5 {
    fn open(path: &Path) -> Result<H5, ToolError> {
        let file = hdf5_metno::File::open(path)
            .map_err(|e| ToolError::new(format!("libhdf5 cannot open {}: {e}", path.display())))?;
        Ok(H5 {
            file,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// What `name` opens, as `H5Oopen` would (soft links followed).
    pub(crate) fn object(&self, name: &str) -> Object {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = cache.get(name) {
            return known.clone();
        }
        let found = self.lookup(name);
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(name.to_owned(), found.clone());
        found
    }

    fn lookup(&self, name: &str) -> Object {
        use hdf5_metno::LocationType;
        if name.contains('\0') {
            return Object::Missing;
        }
        match self.file.loc_type_by_name(name) {
            Ok(LocationType::Group) => Object::Group,
            Ok(LocationType::Dataset) => match self.file.dataset(name) {
                Ok(ds) => Object::Dataset(ds.shape().iter().map(|&d| d as u64).collect()),
                Err(_) => Object::Missing,
            },
            Ok(_) => Object::Other,
            Err(_) => Object::Missing,
        }
    }

    /// Every group and dataset reachable from `/` (soft links followed, 6 levels at most).
    fn walk(&self) -> Result<Vec<(String, Object)>, ToolError> {
        let mut out = vec![("/".to_owned(), Object::Group)];
        let mut pending = vec![("/".to_owned(), 0)];
        while let Some((group, depth)) = pending.pop() {
            let names = self
                .file
                .group(&group)
                .and_then(|g| g.member_names())
                .map_err(|e| ToolError::new(format!("cannot list {group}: {e}")))?;
            for name in names {
                let path = format!("{}/{name}", group.trim_end_matches('/'));
                let object = self.object(&path);
                if object == Object::Group && depth < 6 {
                    pending.push((path.clone(), depth + 1));
                }
                out.push((path, object));
            }
        }
        Ok(out)
    }
}

impl Site {
    /// The first `n` values of the snapshot's gas coordinates, as libhdf5 reads them.
    pub(crate) fn coordinates(&self, n: usize) -> Result<Vec<f64>, ToolError> {
        let values = self.files[0]
            .file
            .dataset("/PartType0/Coordinates")
            .and_then(|d| d.read_raw::<f64>())
            .map_err(|e| ToolError::new(format!("libhdf5 cannot read the coordinates: {e}")))?;
        Ok(values.into_iter().take(n).collect())
    }
}
