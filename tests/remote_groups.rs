//! Cassette tests for groups: path rules and object identity (`test_paths/*`), listings,
//! attributes and visiting (`test_group_listing/*`).

#[allow(dead_code)]
mod remote_common;
#[allow(dead_code)] // each test crate uses a subset
mod support;

use std::sync::Arc;

use hdfstream::{File, HasAttrs, Object};
use remote_common::{E0, Session, assert_attr_matches, map_get, map_keys, session};

/// root listing, then the EAGLE file (the prefix every cassette here starts with).
fn open_e0(s: &Session) -> Arc<File> {
    let root = s.open("/").into_directory().unwrap();
    root.file(E0).unwrap()
}

fn paths_case(name: &str, check: impl FnOnce(&Arc<File>)) {
    let Some(s) = session(&format!("test_paths/{name}")) else {
        return;
    };
    let f = open_e0(&s);
    check(&f);
    s.finish();
}

#[test]
fn absolute_path_group() {
    paths_case("test_absolute_path_group", |f| {
        let p1 = f.group("PartType1").unwrap();
        let a = p1.group("/PartType0").unwrap();
        let b = f.group("PartType0").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.path(), "/PartType0");
    });
}

#[test]
fn absolute_path_root() {
    paths_case("test_absolute_path_root", |f| {
        let p1 = f.group("PartType1").unwrap();
        assert!(Arc::ptr_eq(&p1.group("/").unwrap(), &f.root().unwrap()));
    });
}

#[test]
fn dot_path_append() {
    paths_case("test_dot_path_append", |f| {
        let a = f.group("PartType1/.").unwrap();
        assert!(Arc::ptr_eq(&a, &f.group("PartType1").unwrap()));
    });
}

#[test]
fn dot_path_subscript() {
    paths_case("test_dot_path_subscript", |f| {
        let p1 = f.group("PartType1").unwrap();
        assert!(Arc::ptr_eq(&p1.group(".").unwrap(), &p1));
    });
}

#[test]
fn leading_slash() {
    paths_case("test_leading_slash", |f| {
        let a = f.group("/PartType1").unwrap();
        assert_eq!(a.path(), "/PartType1");
        assert_eq!(a.name(), "PartType1");
        assert!(Arc::ptr_eq(&a, &f.group("PartType1").unwrap()));
    });
}

#[test]
fn leading_trailing_slash() {
    paths_case("test_leading_trailing_slash", |f| {
        let a = f.group("/PartType1/").unwrap();
        assert!(Arc::ptr_eq(&a, &f.group("PartType1").unwrap()));
    });
}

#[test]
fn parent_path_append() {
    paths_case("test_parent_path_append", |f| {
        let a = f.group("PartType1/..").unwrap();
        assert!(Arc::ptr_eq(&a, &f.root().unwrap()));
    });
}

#[test]
fn parent_path_subscript() {
    paths_case("test_parent_path_subscript", |f| {
        let p1 = f.group("PartType1").unwrap();
        let root = f.root().unwrap();
        assert!(Arc::ptr_eq(&p1.group("..").unwrap(), &root));
        assert!(Arc::ptr_eq(&p1.parent().unwrap(), &root));
        assert!(
            Arc::ptr_eq(&root.parent().unwrap(), &root),
            "the root is its own parent"
        );
    });
}

#[test]
fn trailing_slash() {
    paths_case("test_trailing_slash", |f| {
        let a = f.group("PartType1/").unwrap();
        assert_eq!(a.path(), "/PartType1");
    });
}

/// Member names of the recorded object response at interaction `i`.
fn recorded_members(s: &Session, i: usize) -> Vec<String> {
    map_keys(map_get(&s.recorded_response(i), "members"))
}

#[test]
fn root_group_listing() {
    let Some(s) = session("test_group_listing/test_root_group_listing") else {
        return;
    };
    let f = open_e0(&s);
    let keys = f.keys().unwrap();
    assert_eq!(keys, recorded_members(&s, 2));
    assert_eq!(
        keys,
        [
            "Config",
            "Constants",
            "HashTable",
            "Header",
            "Parameters",
            "PartType0",
            "PartType1",
            "RuntimePars",
            "Units"
        ]
    );
    // Membership of a nil member needs no request.
    assert!(f.contains("PartType1").unwrap());
    assert!(!f.contains("not-present").unwrap());
    assert!(f.contains("/").unwrap());
    s.finish();
}

#[test]
fn group_attributes() {
    let Some(s) = session("test_group_listing/test_group_attributes") else {
        return;
    };
    let Some(expected) = support::eagle_expected() else {
        return;
    };
    let f = open_e0(&s);
    let header = f.group("Header").unwrap();
    let want = expected["header_attributes"].as_object().unwrap();
    assert_eq!(header.attrs().len(), want.len());
    assert_eq!(header.attrs().len(), 23);
    for (name, w) in want {
        let got = header
            .attrs()
            .get(name)
            .unwrap_or_else(|| panic!("missing attribute {name}"));
        assert_attr_matches(name, got, w);
    }
    assert_eq!(
        header.attrs().get("BoxSize").unwrap().as_f64(),
        Some(8.47125)
    );
    assert_eq!(
        header.attrs().get("NumFilesPerSnapshot").unwrap().as_i64(),
        Some(16)
    );
    assert_eq!(
        header
            .attrs()
            .get("RunLabel")
            .unwrap()
            .as_string()
            .as_deref(),
        Some("\"Eagle")
    );
    s.finish();
}

const PT1: [(&str, &str, &[u64]); 5] = [
    ("Coordinates", "f8", &[414_933, 3]),
    ("GroupNumber", "i4", &[414_933]),
    ("ParticleIDs", "u8", &[414_933]),
    ("SubGroupNumber", "i4", &[414_933]),
    ("Velocity", "f4", &[414_933, 3]),
];

#[test]
fn parttype1_group_listing() {
    let Some(s) = session("test_group_listing/test_parttype1_group_listing") else {
        return;
    };
    let f = open_e0(&s);
    let g = f.group("PartType1").unwrap();
    assert_eq!(g.keys(), recorded_members(&s, 3));
    assert_eq!(g.keys(), PT1.iter().map(|p| p.0).collect::<Vec<_>>());
    for (name, dtype, shape) in PT1 {
        let d = g.dataset(name).unwrap();
        assert_eq!(d.shape(), shape, "{name}");
        assert_eq!(
            hdfstream::remote::ElementKind::from_dtype(d.dtype())
                .unwrap()
                .name(),
            dtype
        );
        assert_eq!(d.len().unwrap(), 414_933);
        assert_eq!(d.ndim(), shape.len());
        assert!(d.inline_data().is_none(), "recorded with data_size_limit 0");
    }
    s.finish();
}

#[test]
fn parttype1_group_visit() {
    let Some(s) = session("test_group_listing/test_parttype1_group_visit") else {
        return;
    };
    let f = open_e0(&s);
    let g = f.group("PartType1").unwrap();
    let mut names = Vec::new();
    g.visit(|n| names.push(n.to_string())).unwrap();
    assert_eq!(names, PT1.iter().map(|p| p.0).collect::<Vec<_>>());
    s.finish();
}

#[test]
fn parttype1_group_visititems() {
    let Some(s) = session("test_group_listing/test_parttype1_group_visititems") else {
        return;
    };
    let f = open_e0(&s);
    let g = f.group("PartType1").unwrap();
    let mut items = Vec::new();
    g.visit_items(|n, o| {
        let Object::Dataset(d) = o else {
            panic!("{n} is not a dataset")
        };
        items.push((n.to_string(), d.path().to_string(), d.shape().to_vec()));
    })
    .unwrap();
    let want: Vec<_> = PT1
        .iter()
        .map(|(n, _, shape)| (n.to_string(), format!("/PartType1/{n}"), shape.to_vec()))
        .collect();
    assert_eq!(items, want);
    s.finish();
}
