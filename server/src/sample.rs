//! A realistic SWIFT/EAGLE-like sample snapshot (`hdfstream sample DIR`): particle files with
//! `Header`, `Cosmology`, `Units` and SWIFT's run-description groups (enough for swiftsimio to
//! load and mask them), gas / dark matter / star particles sorted by cell, unit attributes,
//! soft links and a `Cells/` index as SWIFT's writer makes it (counts, file-local offsets,
//! files, and Min/MaxPositions bounding each cell's particles, which drift up to a fifth of a
//! cell out of their cell; a void of empty cells), SWIFT's filter pipelines (gzip 4, shuffle,
//! Fletcher-32), an `Extra/` group with every other type the server supports, and a halo
//! catalogue whose ids join to the particles' `HaloID`. [`write_virtual_snapshot`] adds the
//! virtual file SWIFT writes next to a multi-file snapshot.
//!
//! Everything is a pure function of the seed: values come from a counter-based generator
//! (`splitmix64` of seed, stream and particle index), so a particle's properties do not depend
//! on how the snapshot is split over files.

use std::path::{Path, PathBuf};

use hdf5_metno::types::{FixedAscii, VarLenArray, VarLenUnicode};
use hdf5_metno::{Dataset, File, Group, H5Type, Location};
use ndarray::{ArrayViewD, IxDyn};

use crate::error::ServerError;

/// Gas particles written by default.
pub const DEFAULT_PARTICLES: u64 = 100_000;
/// Box side length in comoving Mpc.
const BOX_SIZE: f64 = 25.0;
/// Cells per box side in the `Cells/` index.
const CELLS_PER_SIDE: usize = 8;
/// Cells per box side for snapshots of more than [`FINE_GRID_PARTICLES`] gas particles.
const FINE_CELLS_PER_SIDE: usize = 16;
/// Gas particles above which the `Cells/` grid has [`FINE_CELLS_PER_SIDE`] cells per side.
const FINE_GRID_PARTICLES: u64 = 2_000_000;
/// Particle types written, with their SWIFT group numbers.
const TYPES: [usize; 3] = [0, 1, 4];
/// Names of the 7 SWIFT particle types.
const TYPE_NAMES: [&str; 7] = [
    "Gas",
    "DM",
    "DMBackground",
    "Sink",
    "Stars",
    "BH",
    "Neutrino",
];
/// zlib level of the compressed datasets (SWIFT's usual `Snapshots:compression: 4`).
const DEFLATE_LEVEL: u8 = 4;
/// Rows per chunk of the `Cells/` datasets (SWIFT's `io_write_array`: 1024, or fewer cells).
const CELL_CHUNK_ROWS: usize = 1024;
/// Largest drift since the last rebuild along each axis, as a fraction of the cell width.
const MAX_DRIFT: f64 = 0.2;
/// Cell-index range `[VOID_LO, VOID_HI)` along each axis of the void: no particle's home.
const VOID_LO: usize = 2;
const VOID_HI: usize = 4;
/// Rows per chunk of the compressed datasets.
const CHUNK_ROWS: usize = 32_768;
/// Redshift of the snapshot.
const REDSHIFT: f64 = 0.5;
/// Internal units (cgs): Mpc, 1e10 Msun, Mpc / (km/s), K, A.
const UNIT_LENGTH: f64 = 3.085_678e24;
const UNIT_MASS: f64 = 1.988_41e43;
const UNIT_TIME: f64 = 3.085_678e19;
const UNIT_TEMPERATURE: f64 = 1.0;
const UNIT_CURRENT: f64 = 1.0;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleOptions {
    /// Gas particles in the whole snapshot (dark matter: the same, stars: a tenth).
    pub particles: u64,
    /// Number of files the snapshot is split over (1 = `snap_0000.hdf5`).
    pub files: u32,
    /// Seed of the generator.
    pub seed: u64,
}

impl SampleOptions {
    /// Cells per box side of the `Cells/` index: 8, or 16 for more than 2·10^6 gas particles
    /// (so that large samples have SWIFT-like numbers of particles per cell).
    pub fn cells_per_side(&self) -> usize {
        if self.particles > FINE_GRID_PARTICLES {
            FINE_CELLS_PER_SIDE
        } else {
            CELLS_PER_SIDE
        }
    }
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            particles: DEFAULT_PARTICLES,
            files: 1,
            seed: 42,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    /// Snapshot files, in file order.
    pub snapshot_files: Vec<PathBuf>,
    /// The halo catalogue.
    pub halo_file: PathBuf,
    /// Particles per type over all files, indexed by SWIFT type (0 gas, 1 DM, 4 stars).
    pub num_part_total: [u64; 7],
    /// Number of halos in the catalogue.
    pub halos: u64,
    /// Bytes on disk of all files written.
    pub bytes: u64,
}

/// Compound element of `Extra/Structured/HaloTable` (padded in the file, packed by the server).
#[derive(H5Type, Clone, Copy, Debug)]
#[repr(C)]
struct HaloRecord {
    id: i64,
    mass: f64,
    n_part: i32,
    is_main: u8,
}

fn err(path: &Path) -> impl Fn(hdf5_metno::Error) -> ServerError + '_ {
    move |e| ServerError::Sample {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

/// Counter-based generator: a well-mixed 64-bit value for (seed, stream, index).
fn mix(seed: u64, stream: u64, index: u64) -> u64 {
    let mut z = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    for _ in 0..2 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// Uniform in [0, 1).
fn uniform(seed: u64, stream: u64, index: u64) -> f64 {
    (mix(seed, stream, index) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal (Box-Muller on two streams).
fn normal(seed: u64, stream: u64, index: u64) -> f64 {
    let u1 = uniform(seed, stream, index).max(1e-300);
    let u2 = uniform(seed, stream + 1000, index);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The halo population.
struct Halos {
    centre: Vec<[f64; 3]>,
    velocity: Vec<[f32; 3]>,
    mass: Vec<f64>,
    radius: Vec<f64>,
    /// Cumulative mass fractions, for picking a host with probability ∝ mass.
    cumulative: Vec<f64>,
}

impl Halos {
    fn new(seed: u64, n: usize) -> Self {
        let mut h = Halos {
            centre: Vec::with_capacity(n),
            velocity: Vec::with_capacity(n),
            mass: Vec::with_capacity(n),
            radius: Vec::with_capacity(n),
            cumulative: Vec::with_capacity(n),
        };
        let mut total = 0.0;
        for i in 0..n as u64 {
            let c = [0u64, 1, 2].map(|k| uniform(seed, 100 + k, i) * BOX_SIZE);
            // Power-law mass function between 1e10 and 1e14 Msun (internal units 1e10 Msun).
            let m = 10f64.powf(4.0 * uniform(seed, 103, i).powi(3));
            let v = [0u64, 1, 2].map(|k| (normal(seed, 104 + k, i) * 150.0) as f32);
            h.centre.push(c);
            h.velocity.push(v);
            h.mass.push(m);
            h.radius.push(0.08 * m.cbrt());
            total += m;
            h.cumulative.push(total);
        }
        for c in &mut h.cumulative {
            *c /= total;
        }
        h
    }

    fn pick(&self, u: f64) -> usize {
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.cumulative.len() - 1)
    }
}

/// Positions, velocities and hosts of one particle type, in generation order.
struct Particles {
    ptype: usize,
    pos: Vec<[f64; 3]>,
    vel: Vec<[f32; 3]>,
    halo: Vec<i64>,
    /// Generation indices sorted by cell (the file order).
    order: Vec<u32>,
    /// Particles per cell.
    cell_counts: Vec<u64>,
    /// Per cell, the smallest unwrapped coordinates of its particles (`f64::MAX` when empty,
    /// as SWIFT).
    cell_min: Vec<[f64; 3]>,
    /// Per cell, the largest unwrapped coordinates of its particles (`-f64::MAX` when empty).
    cell_max: Vec<[f64; 3]>,
}

/// Width of a top-level cell of a grid of `g` cells per side.
fn cell_width(g: usize) -> f64 {
    BOX_SIZE / g as f64
}

/// Per-axis cell indices of a position in [0, BoxSize).
fn cell_ijk(p: &[f64; 3], g: usize) -> [usize; 3] {
    p.map(|x| ((x / BOX_SIZE * g as f64) as usize).min(g - 1))
}

/// Cell index (SWIFT's `cell_getid`: `(i * cdim + j) * cdim + k`) of a position.
fn cell_of(p: &[f64; 3], g: usize) -> usize {
    let c = cell_ijk(p, g);
    (c[0] * g + c[1]) * g + c[2]
}

/// Whether a position lies in the void, the cells no particle has as its home.
fn in_void(p: &[f64; 3], g: usize) -> bool {
    cell_ijk(p, g)
        .iter()
        .all(|c| (VOID_LO..VOID_HI).contains(c))
}

/// Periodic wrap into [0, BoxSize) (`rem_euclid` alone can round up to BoxSize).
fn wrap(x: f64) -> f64 {
    let w = x.rem_euclid(BOX_SIZE);
    if w >= BOX_SIZE { 0.0 } else { w }
}

fn generate(seed: u64, ptype: usize, n: usize, halos: &Halos, g: usize) -> Particles {
    let s = seed ^ ((ptype as u64 + 1) << 56);
    let in_halo = match ptype {
        4 => 0.95,
        1 => 0.6,
        _ => 0.45,
    };
    let mut pos = Vec::with_capacity(n);
    let mut vel = Vec::with_capacity(n);
    let mut halo = Vec::with_capacity(n);
    for j in 0..n as u64 {
        if uniform(s, 0, j) < in_halo {
            let h = halos.pick(uniform(s, 1, j));
            let r = halos.radius[h];
            let p =
                [0u64, 1, 2].map(|k| wrap(halos.centre[h][k as usize] + r * normal(s, 2 + k, j)));
            let v = [0u64, 1, 2]
                .map(|k| halos.velocity[h][k as usize] + (normal(s, 5 + k, j) * 60.0) as f32);
            pos.push(p);
            vel.push(v);
            halo.push(h as i64 + 1);
        } else {
            pos.push([0u64, 1, 2].map(|k| uniform(s, 8 + k, j) * BOX_SIZE));
            vel.push([0u64, 1, 2].map(|k| (normal(s, 11 + k, j) * 100.0) as f32));
            halo.push(-1);
        }
    }
    // SWIFT sorts particles by cell at a rebuild and then drifts them: each particle's home
    // cell is that of its position before a drift of up to MAX_DRIFT cells along each axis,
    // so cells' particles spill slightly over their nominal extent. Drifted positions are
    // not wrapped in SWIFT's memory (only when written), so a cell's Min/MaxPositions, which
    // SWIFT computes from them, can reach below 0 or above BoxSize: `unwrapped` keeps them.
    // Home positions in the void move two cells along x (with the particle), so the void
    // cells stay empty (the void is away from the box faces, no wrapping there).
    let mut unwrapped = Vec::with_capacity(n);
    let cells: Vec<usize> = pos
        .iter_mut()
        .enumerate()
        .map(|(j, p)| {
            let mut home = [0.0; 3];
            let mut u = *p;
            for k in 0..3 {
                let d =
                    (2.0 * uniform(s, 50 + k as u64, j as u64) - 1.0) * MAX_DRIFT * cell_width(g);
                let raw = p[k] - d;
                if raw < 0.0 {
                    home[k] = wrap(raw + BOX_SIZE);
                    u[k] = p[k] + BOX_SIZE;
                } else if raw >= BOX_SIZE {
                    home[k] = wrap(raw - BOX_SIZE);
                    u[k] = p[k] - BOX_SIZE;
                } else {
                    home[k] = raw;
                }
            }
            if in_void(&home, g) {
                let shift = (VOID_HI - VOID_LO) as f64 * cell_width(g);
                home[0] = wrap(home[0] + shift);
                p[0] = wrap(p[0] + shift);
                u[0] = p[0];
            }
            unwrapped.push(u);
            cell_of(&home, g)
        })
        .collect();
    // Counting sort by home cell.
    let ncells = g.pow(3);
    let mut cell_counts = vec![0u64; ncells];
    for &c in &cells {
        cell_counts[c] += 1;
    }
    let mut next: Vec<u64> = cell_counts
        .iter()
        .scan(0u64, |acc, &c| {
            let start = *acc;
            *acc += c;
            Some(start)
        })
        .collect();
    let mut order = vec![0u32; n];
    let mut cell_min = vec![[f64::MAX; 3]; ncells];
    let mut cell_max = vec![[-f64::MAX; 3]; ncells];
    for (j, &c) in cells.iter().enumerate() {
        order[next[c] as usize] = j as u32;
        next[c] += 1;
        for k in 0..3 {
            cell_min[c][k] = cell_min[c][k].min(unwrapped[j][k]);
            cell_max[c][k] = cell_max[c][k].max(unwrapped[j][k]);
        }
    }
    Particles {
        ptype,
        pos,
        vel,
        halo,
        order,
        cell_counts,
        cell_min,
        cell_max,
    }
}

/// Physical units of a dataset (SWIFT-style attributes).
struct Units {
    desc: &'static str,
    /// Exponents of length, mass, time, temperature.
    l: f32,
    m: f32,
    t: f32,
    temp: f32,
    a: f32,
    h: f32,
}

fn units(desc: &'static str, l: f32, m: f32, t: f32, temp: f32, a: f32) -> Units {
    Units {
        desc,
        l,
        m,
        t,
        temp,
        a,
        h: 0.0,
    }
}

fn write_unit_attrs(ds: &Dataset, u: &Units) -> hdf5_metno::Result<()> {
    let cgs = UNIT_LENGTH.powf(f64::from(u.l))
        * UNIT_MASS.powf(f64::from(u.m))
        * UNIT_TIME.powf(f64::from(u.t))
        * UNIT_TEMPERATURE.powf(f64::from(u.temp));
    attr(
        ds,
        "Conversion factor to CGS (not including cosmological corrections)",
        &[cgs],
    )?;
    scalar(ds, "CGSConversionFactor", &cgs)?;
    attr(ds, "U_L exponent", &[u.l])?;
    attr(ds, "U_M exponent", &[u.m])?;
    attr(ds, "U_t exponent", &[u.t])?;
    attr(ds, "U_T exponent", &[u.temp])?;
    attr(ds, "U_I exponent", &[0.0f32])?;
    attr(ds, "a-scale exponent", &[u.a])?;
    attr(ds, "h-scale exponent", &[u.h])?;
    let physical = cgs * (1.0 / (1.0 + REDSHIFT)).powf(f64::from(u.a));
    attr(
        ds,
        "Conversion factor to physical CGS (including cosmological corrections)",
        &[physical],
    )?;
    scalar(
        ds,
        "Expression for physical CGS units",
        &fixed_str::<64>(&cgs_expression(u)),
    )?;
    scalar(ds, "Lossy compression filter", &fixed_str::<4>("None"))?;
    attr(ds, "Value stored as physical", &[0i32])?;
    attr(ds, "Property can be converted to comoving", &[1i32])?;
    let vd = FixedAscii::<200>::from_ascii(u.desc.as_bytes()).unwrap_or_default();
    scalar(ds, "VarDescription", &vd)?;
    let d: VarLenUnicode = u.desc.parse().unwrap_or_default();
    scalar(ds, "Description", &d)
}

/// SWIFT's "Expression for physical CGS units", e.g. `a U_L [ cm ]`.
fn cgs_expression(u: &Units) -> String {
    let mut out = String::new();
    let mut term = |sym: &str, e: f32| {
        if e != 0.0 {
            if e == 1.0 {
                out.push_str(&format!("{sym} "));
            } else {
                out.push_str(&format!("{sym}^{e} "));
            }
        }
    };
    term("a", u.a);
    term("h", u.h);
    term("U_M", u.m);
    term("U_L", u.l);
    term("U_t", u.t);
    term("U_T", u.temp);
    if out.is_empty() {
        out.push_str("[ - ] ");
    }
    out.push_str("[ cgs ]");
    out
}

fn attr<T: H5Type>(loc: &Location, name: &str, vals: &[T]) -> hdf5_metno::Result<()> {
    loc.new_attr_builder()
        .with_data(vals)
        .create(name)
        .map(|_| ())
}

fn scalar<T: H5Type>(loc: &Location, name: &str, v: &T) -> hdf5_metno::Result<()> {
    loc.new_attr::<T>().create(name)?.write_scalar(v)
}

fn fixed_str<const N: usize>(s: &str) -> FixedAscii<N> {
    FixedAscii::<N>::from_ascii(s.as_bytes()).unwrap_or_default()
}

/// How a dataset is stored (the filter pipelines SWIFT's writer uses).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    /// Contiguous, no filters.
    Plain,
    /// Chunked with a Fletcher-32 checksum only (SWIFT with `Snapshots:compression: 0`).
    Checksum,
    /// Chunked, shuffle + gzip level `DEFLATE_LEVEL` + Fletcher-32 (SWIFT's particle arrays).
    Gzip,
    /// `Cells/` arrays: 1024-row chunks, Fletcher-32 + shuffle + gzip 4 (SWIFT's `io_write_array`).
    Cells,
}

/// Writes a 1-D or (n, width) dataset stored as `store` says (plain when the filter is missing).
fn dataset<T: H5Type>(
    g: &Group,
    name: &str,
    data: &[T],
    width: usize,
    store: Store,
) -> hdf5_metno::Result<Dataset> {
    let rows = data.len().checked_div(width).unwrap_or(data.len());
    let store = if rows == 0
        || !hdf5_metno::filters::deflate_available() && matches!(store, Store::Gzip | Store::Cells)
    {
        Store::Plain
    } else {
        store
    };
    let chunk_rows = if store == Store::Cells {
        rows.clamp(1, CELL_CHUNK_ROWS)
    } else {
        rows.clamp(1, CHUNK_ROWS)
    };
    let shape: Vec<usize> = if width == 0 {
        vec![rows]
    } else {
        vec![rows, width]
    };
    let view = ArrayViewD::from_shape(IxDyn(&shape), data)
        .map_err(|e| hdf5_metno::Error::from(e.to_string().as_str()))?;
    let b = g.new_dataset_builder().with_data(view);
    if store == Store::Plain {
        return b.create(name);
    }
    let mut chunk = shape;
    chunk[0] = chunk_rows;
    let b = b.chunk(chunk);
    match store {
        Store::Gzip => b.shuffle().deflate(DEFLATE_LEVEL).fletcher32().create(name),
        Store::Cells => b.fletcher32().shuffle().deflate(DEFLATE_LEVEL).create(name),
        _ => b.fletcher32().create(name),
    }
}

fn gzip_if(gzip: bool) -> Store {
    if gzip { Store::Gzip } else { Store::Plain }
}

/// The particles of one type that go into one file (indices into generation order).
struct FileSlice<'a> {
    p: &'a Particles,
    rows: &'a [u32],
}

fn id_offset(ptype: usize, total: &[u64; 7]) -> u64 {
    total[..ptype].iter().sum::<u64>() + 1
}

fn write_particles(
    g: &Group,
    fs: &FileSlice<'_>,
    seed: u64,
    total: &[u64; 7],
) -> hdf5_metno::Result<()> {
    let p = fs.p;
    let s = seed ^ ((p.ptype as u64 + 1) << 56);
    let n = fs.rows.len();
    let pos: Vec<f64> = fs.rows.iter().flat_map(|&j| p.pos[j as usize]).collect();
    let ds = dataset(g, "Coordinates", &pos, 3, gzip_if(p.ptype == 1))?;
    write_unit_attrs(
        &ds,
        &units(
            "Co-moving position of the particles",
            1.0,
            0.0,
            0.0,
            0.0,
            1.0,
        ),
    )?;
    drop(pos);
    let vel: Vec<f32> = fs.rows.iter().flat_map(|&j| p.vel[j as usize]).collect();
    let ds = dataset(g, "Velocities", &vel, 3, Store::Plain)?;
    write_unit_attrs(
        &ds,
        &units(
            "Peculiar velocities of the particles",
            1.0,
            0.0,
            -1.0,
            0.0,
            0.0,
        ),
    )?;
    drop(vel);
    let base_mass = match p.ptype {
        1 => 0.0097f32,
        4 => 0.0009,
        _ => 0.0018,
    };
    let masses: Vec<f32> = fs
        .rows
        .iter()
        .map(|&j| base_mass * (1.0 + 0.05 * uniform(s, 20, u64::from(j)) as f32))
        .collect();
    let ds = dataset(g, "Masses", &masses, 0, Store::Checksum)?;
    write_unit_attrs(
        &ds,
        &units("Masses of the particles", 0.0, 1.0, 0.0, 0.0, 0.0),
    )?;
    let off = id_offset(p.ptype, total);
    let ids: Vec<u64> = fs.rows.iter().map(|&j| off + u64::from(j)).collect();
    let ds = dataset(g, "ParticleIDs", &ids, 0, Store::Plain)?;
    write_unit_attrs(
        &ds,
        &units("Unique IDs of the particles", 0.0, 0.0, 0.0, 0.0, 0.0),
    )?;
    let hid: Vec<i64> = fs.rows.iter().map(|&j| p.halo[j as usize]).collect();
    let ds = dataset(g, "HaloID", &hid, 0, gzip_if(p.ptype == 0))?;
    write_unit_attrs(
        &ds,
        &units(
            "ID of the host halo in halos_0000.hdf5 (-1: none)",
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ),
    )?;
    match p.ptype {
        0 => write_gas(g, fs, s, n),
        4 => {
            let birth: Vec<f32> = fs
                .rows
                .iter()
                .map(|&j| (0.1 + 0.55 * uniform(s, 30, u64::from(j))) as f32)
                .collect();
            let ds = dataset(g, "BirthScaleFactors", &birth, 0, Store::Gzip)?;
            write_unit_attrs(
                &ds,
                &units(
                    "Scale-factors at which the stars were born",
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                ),
            )
        }
        _ => Ok(()),
    }
}

fn write_gas(g: &Group, fs: &FileSlice<'_>, s: u64, n: usize) -> hdf5_metno::Result<()> {
    let p = fs.p;
    // Density: log-normal, higher inside halos; temperature anti-correlated in halos' cores.
    let mut dens = Vec::with_capacity(n);
    let mut temp = Vec::with_capacity(n);
    for &j in fs.rows {
        let j64 = u64::from(j);
        let boost = if p.halo[j as usize] > 0 { 3.0 } else { 0.0 };
        dens.push(10f64.powf(-1.0 + boost + 0.8 * normal(s, 40, j64)) as f32);
        temp.push(10f64.powf(4.0 + 2.5 * uniform(s, 42, j64) - 0.3 * boost) as f32);
    }
    let ds = dataset(g, "Densities", &dens, 0, Store::Gzip)?;
    write_unit_attrs(
        &ds,
        &units(
            "Co-moving mass densities of the particles",
            -3.0,
            1.0,
            0.0,
            0.0,
            -3.0,
        ),
    )?;
    let ds = dataset(g, "Temperatures", &temp, 0, Store::Gzip)?;
    write_unit_attrs(
        &ds,
        &units("Temperatures of the gas particles", 0.0, 0.0, 0.0, 1.0, 0.0),
    )?;
    let u: Vec<f32> = temp.iter().map(|t| t * 1.2e-4).collect();
    let ds = dataset(g, "InternalEnergies", &u, 0, Store::Plain)?;
    write_unit_attrs(
        &ds,
        &units(
            "Co-moving thermal energies per unit mass",
            2.0,
            0.0,
            -2.0,
            0.0,
            -2.0,
        ),
    )?;
    let hsml: Vec<f32> = dens
        .iter()
        .map(|d| 0.05 * (0.0018 / d.max(1e-12)).cbrt())
        .collect();
    let ds = dataset(g, "SmoothingLengths", &hsml, 0, Store::Plain)?;
    write_unit_attrs(
        &ds,
        &units(
            "Co-moving smoothing lengths (FWHM of the kernel)",
            1.0,
            0.0,
            0.0,
            0.0,
            1.0,
        ),
    )?;
    let sfr: Vec<f32> = dens
        .iter()
        .zip(&temp)
        .map(|(d, t)| {
            if *d > 100.0 && *t < 1e5 {
                1e-3 * d.sqrt()
            } else {
                0.0
            }
        })
        .collect();
    let ds = dataset(g, "StarFormationRates", &sfr, 0, Store::Plain)?;
    write_unit_attrs(
        &ds,
        &units("Star formation rates of the gas", 0.0, 1.0, -1.0, 0.0, 0.0),
    )?;
    let flag: Vec<bool> = sfr.iter().map(|&r| r > 0.0).collect();
    let ds = dataset(g, "IsStarForming", &flag, 0, Store::Plain)?;
    write_unit_attrs(
        &ds,
        &units(
            "Whether the gas is star forming (h5py boolean)",
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ),
    )?;
    // H, He, C, N, O, Ne, Mg, Si, Fe.
    const SOLAR: [f32; 7] = [2.4e-3, 7.0e-4, 5.7e-3, 1.2e-3, 7.0e-4, 6.6e-4, 1.3e-3];
    let mut frac = Vec::with_capacity(n * 9);
    for &j in fs.rows {
        let z = (0.02 * uniform(s, 44, u64::from(j))) as f32;
        let metals: Vec<f32> = SOLAR.iter().map(|m| m * z / 0.0134).collect();
        let sum: f32 = metals.iter().sum();
        let he = 0.248 + 0.5 * z;
        frac.push(1.0 - he - sum);
        frac.push(he);
        frac.extend(metals);
    }
    let ds = dataset(g, "ElementMassFractions", &frac, 9, Store::Plain)?;
    write_unit_attrs(
        &ds,
        &units(
            "Fractions of the particles' masses in H, He, C, N, O, Ne, Mg, Si, Fe",
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ),
    )
}

/// Writes the whole sample set into `dir` (created if missing).
pub fn write_sample(dir: &Path, opts: &SampleOptions) -> Result<SampleSummary, ServerError> {
    std::fs::create_dir_all(dir).map_err(|e| ServerError::Sample {
        path: dir.to_owned(),
        detail: e.to_string(),
    })?;
    let n_gas = usize::try_from(opts.particles)
        .ok()
        .filter(|&n| n <= u32::MAX as usize)
        .ok_or_else(|| ServerError::Sample {
            path: dir.to_owned(),
            detail: "too many particles".to_owned(),
        })?;
    let files = opts.files.max(1) as usize;
    let counts = [n_gas, n_gas, n_gas / 10];
    let n_halos = (n_gas / 500).max(1);
    let halos = Halos::new(opts.seed, n_halos);
    let grid = opts.cells_per_side();
    let parts: Vec<Particles> = TYPES
        .iter()
        .zip(counts)
        .map(|(&t, n)| generate(opts.seed, t, n, &halos, grid))
        .collect();
    let mut total = [0u64; 7];
    for p in &parts {
        total[p.ptype] = p.pos.len() as u64;
    }
    let ncells = grid.pow(3);
    let mut summary = SampleSummary {
        snapshot_files: Vec::with_capacity(files),
        halo_file: dir.join("halos_0000.hdf5"),
        num_part_total: total,
        halos: n_halos as u64,
        bytes: 0,
    };
    // File f holds cells [f * ncells / files, (f + 1) * ncells / files).
    let cell_file: Vec<i32> = (0..ncells).map(|c| (c * files / ncells) as i32).collect();
    for f in 0..files {
        let path = if files == 1 {
            dir.join("snap_0000.hdf5")
        } else {
            dir.join(format!("snap_0000.{f}.hdf5"))
        };
        write_snapshot_file(&path, f, files, &parts, &cell_file, &total, opts.seed)
            .map_err(err(&path))?;
        summary.snapshot_files.push(path);
    }
    write_halo_file(&summary.halo_file, &halos, &parts).map_err(err(&summary.halo_file))?;
    for p in summary.snapshot_files.iter().chain([&summary.halo_file]) {
        summary.bytes += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    }
    tracing::info!(
        files = files,
        bytes = summary.bytes,
        "sample written to {}",
        dir.display()
    );
    Ok(summary)
}

fn write_snapshot_file(
    path: &Path,
    f: usize,
    files: usize,
    parts: &[Particles],
    cell_file: &[i32],
    total: &[u64; 7],
    seed: u64,
) -> hdf5_metno::Result<()> {
    let file = File::create(path)?;
    let ncells = cell_file.len();
    let first_cell = cell_file
        .iter()
        .position(|&c| c as usize == f)
        .unwrap_or(ncells);
    let end_cell = cell_file
        .iter()
        .rposition(|&c| c as usize == f)
        .map_or(first_cell, |c| c + 1);
    let mut this_file = [0u64; 7];
    let mut slices = Vec::new();
    for p in parts {
        let start: u64 = p.cell_counts[..first_cell].iter().sum();
        let len: u64 = p.cell_counts[first_cell..end_cell].iter().sum();
        this_file[p.ptype] = len;
        slices.push(FileSlice {
            p,
            rows: &p.order[start as usize..(start + len) as usize],
        });
    }
    write_header(&file, f, files, &this_file, total, false)?;
    for fs in &slices {
        let g = file.create_group(&format!("PartType{}", fs.p.ptype))?;
        write_particles(&g, fs, seed, total)?;
    }
    file.link_soft("/PartType0", "GasParticles")?;
    file.link_soft("/PartType1", "DMParticles")?;
    file.link_soft("/PartType4", "StarsParticles")?;
    let arrays: Vec<CellArrays> = parts
        .iter()
        .map(|p| CellArrays::of_file(p, cell_file))
        .collect();
    write_cells(&file, &arrays)?;
    write_extra(&file, seed)?;
    file.close()
}

fn write_header(
    file: &File,
    f: usize,
    files: usize,
    this_file: &[u64; 7],
    total: &[u64; 7],
    is_virtual: bool,
) -> hdf5_metno::Result<()> {
    let a = 1.0 / (1.0 + REDSHIFT);
    let h = file.create_group("Header")?;
    attr(&h, "BoxSize", &[BOX_SIZE; 3])?;
    attr(&h, "NumPart_ThisFile", &this_file.map(|n| n as i64))?;
    attr(&h, "NumPart_Total", &total.map(|n| n as u32))?;
    attr(
        &h,
        "NumPart_Total_HighWord",
        &total.map(|n| (n >> 32) as u32),
    )?;
    let files_per_snapshot = if is_virtual { 1 } else { files as i32 };
    attr(&h, "NumFilesPerSnapshot", &[files_per_snapshot])?;
    attr(&h, "ThisFile", &[f as i32])?;
    attr(&h, "Redshift", &[REDSHIFT])?;
    attr(&h, "Scale-factor", &[a])?;
    attr(&h, "Time", &[a])?;
    attr(&h, "MassTable", &[0.0f64; 7])?;
    attr(&h, "Dimension", &[3i32])?;
    scalar(&h, "RunName", &fixed_str::<26>("hdfstream-sample-L0025"))?;
    scalar(&h, "Code", &fixed_str::<5>("SWIFT"))?;
    let names: Vec<FixedAscii<128>> = TYPE_NAMES.iter().map(|s| fixed_str::<128>(s)).collect();
    h.new_dataset_builder()
        .with_data(&names[..])
        .create("PartTypeNames")?;
    // The rest of what SWIFT's writer puts in the header (swiftsimio reads several).
    attr(&h, "TotalNumberOfParticles", &total.map(|n| n as i64))?;
    attr(&h, "InitialMassTable", &[0.0f64; 7])?;
    attr(&h, "Flag_Entropy_ICs", &[0u32; 7])?;
    attr(&h, "CanHaveTypes", &total.map(|n| i32::from(n > 0)))?;
    attr(&h, "Virtual", &[i32::from(is_virtual)])?;
    attr(&h, "Shift", &[0.0f64; 3])?;
    attr(&h, "TimeBase_dloga", &[1.0e-16f64])?;
    attr(&h, "TimeBase_dt", &[1.0e-12f64])?;
    scalar(&h, "OutputType", &fixed_str::<10>("FullVolume"))?;
    scalar(&h, "SelectOutput", &fixed_str::<7>("Default"))?;
    scalar(&h, "System", &fixed_str::<16>("hdfstream-sample"))?;
    scalar(
        &h,
        "SnapshotDate",
        &fixed_str::<23>("00:00:00 2026-01-01 UTC"),
    )?;
    let c = file.create_group("Cosmology")?;
    for (k, v) in [
        ("h", 0.6777),
        ("Omega_m", 0.307),
        ("Omega_lambda", 0.693),
        ("Omega_b", 0.0482),
        ("Omega_r", 0.0),
        ("Redshift", REDSHIFT),
        ("Scale-factor", a),
        ("Omega_cdm", 0.307 - 0.0482),
        ("Omega_k", 0.0),
        ("Omega_nu", 0.0),
        ("Omega_nu_0", 0.0),
        // 100 h km/s/Mpc in the internal time unit Mpc / (km/s).
        ("H0 [internal units]", 67.77),
        ("w_0", -1.0),
        ("w_a", 0.0),
        ("w", -1.0),
        ("T_CMB_0 [K]", 2.7255),
        ("N_eff", 3.04),
        ("N_ur", 3.04),
        ("N_nu", 0.0),
        ("a_beg", 1.0 / 128.0),
        ("a_end", 1.0),
    ] {
        attr(&c, k, &[v])?;
    }
    attr(&c, "Cosmological run", &[1i32])?;
    let u = file.create_group("Units")?;
    attr(&u, "Unit length in cgs (U_L)", &[UNIT_LENGTH])?;
    attr(&u, "Unit mass in cgs (U_M)", &[UNIT_MASS])?;
    attr(&u, "Unit time in cgs (U_t)", &[UNIT_TIME])?;
    attr(&u, "Unit current in cgs (U_I)", &[UNIT_CURRENT])?;
    attr(&u, "Unit temperature in cgs (U_T)", &[UNIT_TEMPERATURE])?;
    let u = file.create_group("InternalCodeUnits")?;
    attr(&u, "Unit length in cgs (U_L)", &[UNIT_LENGTH])?;
    attr(&u, "Unit mass in cgs (U_M)", &[UNIT_MASS])?;
    attr(&u, "Unit time in cgs (U_t)", &[UNIT_TIME])?;
    attr(&u, "Unit current in cgs (U_I)", &[UNIT_CURRENT])?;
    attr(&u, "Unit temperature in cgs (U_T)", &[UNIT_TEMPERATURE])?;
    write_scheme_groups(file, files)?;
    let code = file.create_group("Code")?;
    scalar(&code, "Code", &fixed_str::<5>("SWIFT"))?;
    let git: VarLenUnicode = "hdfstream-sample v1".parse().unwrap_or_default();
    scalar(&code, "Git Revision", &git)?;
    Ok(())
}

/// SWIFT's run-description groups: `Policy`, `Parameters`, the schemes (with the named
/// columns of `ElementMassFractions`), `RuntimePars` and `UnusedParameters`.
fn write_scheme_groups(file: &File, files: usize) -> hdf5_metno::Result<()> {
    let policy = file.create_group("Policy")?;
    for (k, v) in [
        ("steal", 1i32),
        ("keep", 1),
        ("block", 0),
        ("cpu tight", 0),
        ("mpi", i32::from(files > 1)),
        ("numa affinity", 0),
        ("hydrodynamics", 1),
        ("self gravity", 1),
        ("external gravity", 0),
        ("cosmological integration", 1),
        ("drift everything", 1),
        ("reconstruct multi-poles", 1),
        ("temperature", 1),
        ("cooling", 0),
        ("stars", 1),
        ("star formation", 1),
        ("feedback", 0),
        ("black holes", 0),
        ("fof search", 0),
    ] {
        attr(&policy, k, &[v])?;
    }
    let params = file.create_group("Parameters")?;
    let distributed = if files > 1 { "1" } else { "0" };
    for (k, v) in [
        ("MetaData:run_name", "hdfstream-sample-L0025"),
        ("Snapshots:basename", "snap"),
        ("Snapshots:compression", "4"),
        ("Snapshots:distributed", distributed),
        ("Cosmology:h", "0.6777"),
        ("Cosmology:Omega_cdm", "0.2588"),
        ("Cosmology:Omega_lambda", "0.693"),
        ("Cosmology:Omega_b", "0.0482"),
        ("Cosmology:a_begin", "0.0078125"),
        ("Cosmology:a_end", "1.0"),
        ("Scheduler:max_top_level_cells", "8"),
    ] {
        let v: VarLenUnicode = v.parse().unwrap_or_default();
        scalar(&params, k, &v)?;
    }
    file.create_group("UnusedParameters")?;
    let hydro = file.create_group("HydroScheme")?;
    attr(&hydro, "Adiabatic index", &[5.0f32 / 3.0])?;
    attr(&hydro, "Dimension", &[3i32])?;
    scalar(&hydro, "Scheme", &fixed_str::<32>("SPHENIX (Borrow+ 2020)"))?;
    scalar(&hydro, "Kernel function", &fixed_str::<32>("Wendland C2"))?;
    attr(&hydro, "Kernel target N_ngb", &[57.7f32])?;
    let gravity = file.create_group("GravityScheme")?;
    attr(
        &gravity,
        "Comoving DM softening length [internal units]",
        &[0.002f32],
    )?;
    attr(&gravity, "Opening angle", &[0.7f32])?;
    let stars = file.create_group("StarsScheme")?;
    scalar(
        &stars,
        "Scheme",
        &fixed_str::<32>("Basic stars (no feedback)"),
    )?;
    let runtime = file.create_group("RuntimePars")?;
    attr(&runtime, "PeriodicBoundariesOn", &[1i32])?;
    let subgrid = file.create_group("SubgridScheme")?;
    scalar(&subgrid, "Chemistry Model", &fixed_str::<5>("EAGLE"))?;
    let named = subgrid.create_group("NamedColumns")?;
    let elements: Vec<FixedAscii<32>> = [
        "Hydrogen",
        "Helium",
        "Carbon",
        "Nitrogen",
        "Oxygen",
        "Neon",
        "Magnesium",
        "Silicon",
        "Iron",
    ]
    .iter()
    .map(|s| fixed_str::<32>(s))
    .collect();
    named
        .new_dataset_builder()
        .with_data(&elements[..])
        .create("ElementMassFractions")?;
    Ok(())
}

/// One particle type's columns of the `Cells/` index.
struct CellArrays {
    ptype: usize,
    counts: Vec<i64>,
    offsets: Vec<i64>,
    files: Vec<i32>,
    /// (ncells, 3) row-major.
    min: Vec<f64>,
    max: Vec<f64>,
}

impl CellArrays {
    /// The index of a distributed snapshot file: `Files` names the file holding each cell
    /// (its cells are contiguous) and `OffsetsInFile` is the offset in that file.
    fn of_file(p: &Particles, cell_file: &[i32]) -> Self {
        let counts: Vec<i64> = p.cell_counts.iter().map(|&n| n as i64).collect();
        let mut offsets = Vec::with_capacity(counts.len());
        let mut acc = 0i64;
        for (i, &n) in counts.iter().enumerate() {
            if i > 0 && cell_file[i] != cell_file[i - 1] {
                acc = 0;
            }
            offsets.push(acc);
            acc += n;
        }
        CellArrays {
            ptype: p.ptype,
            counts,
            offsets,
            files: cell_file.to_vec(),
            min: p.cell_min.iter().flatten().copied().collect(),
            max: p.cell_max.iter().flatten().copied().collect(),
        }
    }
}

/// Writes `Cells/` as SWIFT's `io_write_cell_offsets` does (every file of a distributed
/// snapshot holds all cells of the snapshot).
fn write_cells(file: &File, arrays: &[CellArrays]) -> hdf5_metno::Result<()> {
    let ncells = arrays.first().map_or(0, |a| a.counts.len());
    let g = [CELLS_PER_SIDE, FINE_CELLS_PER_SIDE]
        .into_iter()
        .find(|g| g.pow(3) == ncells)
        .ok_or_else(|| {
            hdf5_metno::Error::from(format!("{ncells} cells is not a known grid").as_str())
        })?;
    let cells = file.create_group("Cells")?;
    let meta = cells.create_group("Meta-data")?;
    attr(&meta, "nr_cells", &[ncells as i32])?;
    attr(&meta, "size", &[cell_width(g); 3])?;
    attr(&meta, "dimension", &[g as i32; 3])?;
    let centres: Vec<f64> = (0..ncells)
        .flat_map(|c| [c / (g * g), (c / g) % g, c % g].map(|i| (i as f64 + 0.5) * cell_width(g)))
        .collect();
    dataset(&cells, "Centres", &centres, 3, Store::Cells)?;
    let offsets = cells.create_group("OffsetsInFile")?;
    let files = cells.create_group("Files")?;
    let counts = cells.create_group("Counts")?;
    let ming = cells.create_group("MinPositions")?;
    let maxg = cells.create_group("MaxPositions")?;
    for a in arrays {
        let name = format!("PartType{}", a.ptype);
        dataset(&files, &name, &a.files, 0, Store::Cells)?;
        dataset(&offsets, &name, &a.offsets, 0, Store::Cells)?;
        dataset(&counts, &name, &a.counts, 0, Store::Cells)?;
        dataset(&ming, &name, &a.min, 3, Store::Cells)?;
        dataset(&maxg, &name, &a.max, 3, Store::Cells)?;
    }
    Ok(())
}

/// Path of the virtual file of a multi-file sample (`snap_0000.hdf5` next to its files).
pub fn virtual_snapshot_path(summary: &SampleSummary) -> Option<PathBuf> {
    let first = summary.snapshot_files.first()?;
    (summary.snapshot_files.len() > 1).then(|| first.with_file_name("snap_0000.hdf5"))
}

/// Writes the virtual file SWIFT writes next to a distributed snapshot (`snap_0000.hdf5`,
/// `NumFilesPerSnapshot` 1, `Virtual` 1): its particle datasets are HDF5 virtual datasets
/// mapping the files' rows one after the other (source names relative, as SWIFT's), and its
/// `Cells/` has `Files` all 0 and `OffsetsInFile` in rows of the virtual datasets.
/// swiftsimio masks only work on such a file (or on a single-file snapshot).
pub fn write_virtual_snapshot(summary: &SampleSummary) -> Result<PathBuf, ServerError> {
    let path = virtual_snapshot_path(summary).ok_or_else(|| ServerError::Sample {
        path: summary.halo_file.clone(),
        detail: "a virtual file needs a snapshot of several files".to_owned(),
    })?;
    write_virtual(&path, &summary.snapshot_files, &summary.num_part_total).map_err(err(&path))?;
    Ok(path)
}

fn write_virtual(path: &Path, sources: &[PathBuf], total: &[u64; 7]) -> hdf5_metno::Result<()> {
    let opened: Vec<File> = sources.iter().map(File::open).collect::<Result<_, _>>()?;
    let mut this_file = Vec::with_capacity(opened.len());
    for f in &opened {
        let n: Vec<i64> = f.group("Header")?.attr("NumPart_ThisFile")?.read_raw()?;
        this_file.push(n);
    }
    let file = File::create(path)?;
    write_header(&file, 0, sources.len(), total, total, true)?;
    let first = opened
        .first()
        .ok_or_else(|| hdf5_metno::Error::from("no snapshot files"))?;
    let mut arrays = Vec::new();
    for &t in &TYPES {
        let name = format!("PartType{t}");
        let files: Vec<i32> = first.dataset(&format!("Cells/Files/{name}"))?.read_raw()?;
        let local: Vec<i64> = first
            .dataset(&format!("Cells/OffsetsInFile/{name}"))?
            .read_raw()?;
        // Row of each file's first particle in the virtual datasets.
        let mut starts = vec![0i64; opened.len() + 1];
        for (i, n) in this_file.iter().enumerate() {
            starts[i + 1] = starts[i] + n.get(t).copied().unwrap_or(0);
        }
        let offsets = files
            .iter()
            .zip(&local)
            .map(|(&f, &o)| starts.get(f as usize).copied().unwrap_or(0) + o)
            .collect();
        arrays.push(CellArrays {
            ptype: t,
            counts: first.dataset(&format!("Cells/Counts/{name}"))?.read_raw()?,
            offsets,
            files: vec![0; files.len()],
            min: first
                .dataset(&format!("Cells/MinPositions/{name}"))?
                .read_raw()?,
            max: first
                .dataset(&format!("Cells/MaxPositions/{name}"))?
                .read_raw()?,
        });
        let g = file.create_group(&name)?;
        for member in first.group(&name)?.member_names()? {
            let src = first.dataset(&format!("{name}/{member}"))?;
            let shape = src.shape();
            let width: Vec<usize> = shape.iter().skip(1).copied().collect();
            let rows = total[t] as usize;
            let vds_extents: Vec<usize> = std::iter::once(rows).chain(width.clone()).collect();
            let mut b = g
                .new_dataset_builder()
                .empty_as(&src.dtype()?)
                .shape(vds_extents.clone());
            let mut start = 0usize;
            for (i, source) in sources.iter().enumerate() {
                let n = this_file[i].get(t).copied().unwrap_or(0) as usize;
                if n == 0 {
                    continue;
                }
                let src_extents: Vec<usize> = std::iter::once(n).chain(width.clone()).collect();
                let src_name = source
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let rows_sel = if width.is_empty() {
                    hdf5_metno::Selection::from(start..start + n)
                } else {
                    hdf5_metno::Selection::from((start..start + n, ..))
                };
                b = b.virtual_map(
                    &src_name,
                    format!("{name}/{member}"),
                    src_extents,
                    ..,
                    vds_extents.clone(),
                    rows_sel,
                );
                start += n;
            }
            let ds = b.create(member.as_str())?;
            copy_attrs(&src, &ds)?;
        }
    }
    file.link_soft("/PartType0", "GasParticles")?;
    file.link_soft("/PartType1", "DMParticles")?;
    file.link_soft("/PartType4", "StarsParticles")?;
    write_cells(&file, &arrays)?;
    file.close()
}

/// Copies the numeric and string attributes of a dataset (what `write_unit_attrs` writes).
fn copy_attrs(src: &Dataset, dst: &Dataset) -> hdf5_metno::Result<()> {
    use hdf5_metno::types::{FloatSize, IntSize, TypeDescriptor as T};
    for name in src.attr_names()? {
        let a = src.attr(&name)?;
        let scalar_attr = a.ndim() == 0;
        match a.dtype()?.to_descriptor()? {
            T::Float(FloatSize::U8) if scalar_attr => scalar(dst, &name, &a.read_scalar::<f64>()?)?,
            T::Float(FloatSize::U8) => attr(dst, &name, &a.read_raw::<f64>()?)?,
            T::Float(FloatSize::U4) => attr(dst, &name, &a.read_raw::<f32>()?)?,
            T::Integer(IntSize::U4) => attr(dst, &name, &a.read_raw::<i32>()?)?,
            T::FixedAscii(_) => scalar(dst, &name, &a.read_scalar::<FixedAscii<256>>()?)?,
            T::VarLenUnicode => scalar(dst, &name, &a.read_scalar::<VarLenUnicode>()?)?,
            _ => {}
        }
    }
    Ok(())
}

/// Other types: vlen strings, scalar, empty, compound, array type, vlen of ints.
fn write_extra(file: &File, seed: u64) -> hdf5_metno::Result<()> {
    let x = file.create_group("Extra")?;
    let names: Vec<VarLenUnicode> = ["Gas", "Dark matter", "Stars", "", "Black holes (none here)"]
        .iter()
        .map(|s| s.parse().unwrap_or_default())
        .collect();
    x.new_dataset_builder()
        .with_data(&names[..])
        .create("TypeDescriptions")?;
    let ds = x.new_dataset::<f64>().create("TotalMass")?;
    ds.write_scalar(&123.25f64)?;
    x.new_dataset::<f32>().shape(0).create("Empty")?;
    let recs: Vec<HaloRecord> = (0..17u64)
        .map(|i| HaloRecord {
            id: i as i64 + 1,
            mass: uniform(seed, 200, i) * 100.0,
            n_part: (i * 7) as i32,
            is_main: (i % 3 == 0) as u8,
        })
        .collect();
    // Compound and array types live in their own group: the Python client cannot describe
    // them and fails on any group expansion that contains them.
    let structured = x.create_group("Structured")?;
    let ds = structured
        .new_dataset_builder()
        .with_data(&recs[..])
        .create("HaloTable")?;
    attr(
        &ds,
        "Columns",
        &[
            fixed_str::<8>("id"),
            fixed_str::<8>("mass"),
            fixed_str::<8>("n_part"),
            fixed_str::<8>("is_main"),
        ],
    )?;
    let arr: Vec<[f32; 3]> = (0..11u64)
        .map(|i| [0u64, 1, 2].map(|k| uniform(seed, 210 + k, i) as f32))
        .collect();
    structured
        .new_dataset_builder()
        .with_data(ndarray::ArrayView1::<[f32; 3]>::from(&arr[..]))
        .create("ArrayTriplets")?;
    let vl: Vec<VarLenArray<i32>> = (0..6usize)
        .map(|i| VarLenArray::from_slice(&(0..i as i32 * 2).collect::<Vec<i32>>()))
        .collect();
    x.new_dataset_builder()
        .with_data(&vl[..])
        .create("VlenInts")?;
    let matrix: Vec<i16> = (0..60).map(|i| (i * 37 % 101 - 50) as i16).collect();
    let m3 = ndarray::Array3::from_shape_vec((3, 4, 5), matrix)
        .map_err(|e| hdf5_metno::Error::from(e.to_string().as_str()))?;
    x.new_dataset_builder().with_data(&m3).create("Matrix3D")?;
    scalar(&x, "ScalarString", &fixed_str::<12>("scalar"))?;
    attr(&x, "UInt8s", &[1u8, 2, 250])?;
    attr(&x, "Int8s", &[-1i8, 2, -128])?;
    attr(&x, "UInt16s", &[65535u16, 2])?;
    let vs: VarLenUnicode = "a variable-length string attribute"
        .parse()
        .unwrap_or_default();
    scalar(&x, "VlenStringAttr", &vs)?;
    Ok(())
}

fn write_halo_file(path: &Path, halos: &Halos, parts: &[Particles]) -> hdf5_metno::Result<()> {
    let n = halos.mass.len();
    let mut members = vec![0i64; n];
    for p in parts {
        for &h in &p.halo {
            if h > 0 {
                members[(h - 1) as usize] += 1;
            }
        }
    }
    let file = File::create(path)?;
    let hdr = file.create_group("Header")?;
    attr(&hdr, "NumHalos", &[n as i64])?;
    attr(&hdr, "BoxSize", &[BOX_SIZE; 3])?;
    attr(&hdr, "Redshift", &[REDSHIFT])?;
    let g = file.create_group("Halos")?;
    let ids: Vec<i64> = (1..=n as i64).collect();
    dataset(&g, "ID", &ids, 0, Store::Plain)?;
    let ds = dataset(&g, "Mass", &halos.mass, 0, Store::Plain)?;
    write_unit_attrs(&ds, &units("Halo masses", 0.0, 1.0, 0.0, 0.0, 0.0))?;
    let c: Vec<f64> = halos.centre.iter().flatten().copied().collect();
    let ds = dataset(&g, "Centre", &c, 3, Store::Plain)?;
    write_unit_attrs(
        &ds,
        &units("Co-moving halo centres", 1.0, 0.0, 0.0, 0.0, 1.0),
    )?;
    let v: Vec<f32> = halos.velocity.iter().flatten().copied().collect();
    dataset(&g, "Velocity", &v, 3, Store::Plain)?;
    dataset(&g, "Radius", &halos.radius, 0, Store::Plain)?;
    dataset(&g, "NumParticles", &members, 0, Store::Plain)?;
    file.close()
}
