//! A realistic SWIFT/EAGLE-like sample snapshot (`hdfstream sample DIR`): particle files with
//! `Header`, `Cosmology`, `Units`, gas / dark matter / star particles sorted by cell, unit
//! attributes, soft links and a `Cells/` index, an `Extra/` group with every other type the
//! server supports, and a halo catalogue whose ids join to the particles' `HaloID`.
//!
//! Everything is a pure function of the seed: values come from a counter-based generator
//! (`splitmix64` of seed, stream and particle index), so a particle's properties do not depend
//! on how the snapshot is split over files.

use std::path::{Path, PathBuf};

use hdf5_metno::types::{FixedAscii, VarLenArray, VarLenUnicode};
use hdf5_metno::{Dataset, File, Group, H5Type, Location};
use ndarray::ArrayView2;

use crate::error::ServerError;

/// Gas particles written by default.
pub const DEFAULT_PARTICLES: u64 = 100_000;
/// Box side length in comoving Mpc.
const BOX_SIZE: f64 = 25.0;
/// Cells per box side in the `Cells/` index.
const CELLS_PER_SIDE: usize = 8;
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
/// zlib level of the compressed datasets (1: fast; shuffled floats barely gain from more).
const DEFLATE_LEVEL: u8 = 1;
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
}

fn cell_of(p: &[f64; 3]) -> usize {
    let g = CELLS_PER_SIDE;
    let c = p.map(|x| ((x / BOX_SIZE * g as f64) as usize).min(g - 1));
    (c[0] * g + c[1]) * g + c[2]
}

fn generate(seed: u64, ptype: usize, n: usize, halos: &Halos) -> Particles {
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
            let p = [0u64, 1, 2].map(|k| {
                (halos.centre[h][k as usize] + r * normal(s, 2 + k, j)).rem_euclid(BOX_SIZE)
            });
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
    // Counting sort by cell.
    let ncells = CELLS_PER_SIDE.pow(3);
    let cells: Vec<usize> = pos.iter().map(cell_of).collect();
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
    for (j, &c) in cells.iter().enumerate() {
        order[next[c] as usize] = j as u32;
        next[c] += 1;
    }
    Particles {
        ptype,
        pos,
        vel,
        halo,
        order,
        cell_counts,
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
    let vd = FixedAscii::<200>::from_ascii(u.desc.as_bytes()).unwrap_or_default();
    scalar(ds, "VarDescription", &vd)?;
    let d: VarLenUnicode = u.desc.parse().unwrap_or_default();
    scalar(ds, "Description", &d)
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

/// Writes a 1-D or (n, width) dataset, gzip-chunked when `compress` and deflate is available.
fn dataset<T: H5Type>(
    g: &Group,
    name: &str,
    data: &[T],
    width: usize,
    compress: bool,
) -> hdf5_metno::Result<Dataset> {
    let rows = data.len().checked_div(width).unwrap_or(data.len());
    let gzip = compress && rows > 0 && hdf5_metno::filters::deflate_available();
    let chunk = rows.clamp(1, CHUNK_ROWS);
    if width == 0 {
        let b = g.new_dataset_builder().with_data(data);
        if gzip {
            b.chunk(chunk).shuffle().deflate(DEFLATE_LEVEL).create(name)
        } else {
            b.create(name)
        }
    } else {
        let view = ArrayView2::from_shape((rows, width), data)
            .map_err(|e| hdf5_metno::Error::from(e.to_string().as_str()))?;
        let b = g.new_dataset_builder().with_data(view);
        if gzip {
            b.chunk((chunk, width))
                .shuffle()
                .deflate(DEFLATE_LEVEL)
                .create(name)
        } else {
            b.create(name)
        }
    }
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
    let ds = dataset(g, "Coordinates", &pos, 3, p.ptype == 1)?;
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
    let ds = dataset(g, "Velocities", &vel, 3, false)?;
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
    let ds = dataset(g, "Masses", &masses, 0, false)?;
    write_unit_attrs(
        &ds,
        &units("Masses of the particles", 0.0, 1.0, 0.0, 0.0, 0.0),
    )?;
    let off = id_offset(p.ptype, total);
    let ids: Vec<u64> = fs.rows.iter().map(|&j| off + u64::from(j)).collect();
    let ds = dataset(g, "ParticleIDs", &ids, 0, false)?;
    write_unit_attrs(
        &ds,
        &units("Unique IDs of the particles", 0.0, 0.0, 0.0, 0.0, 0.0),
    )?;
    let hid: Vec<i64> = fs.rows.iter().map(|&j| p.halo[j as usize]).collect();
    let ds = dataset(g, "HaloID", &hid, 0, p.ptype == 0)?;
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
            let ds = dataset(g, "BirthScaleFactors", &birth, 0, true)?;
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
    let ds = dataset(g, "Densities", &dens, 0, true)?;
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
    let ds = dataset(g, "Temperatures", &temp, 0, true)?;
    write_unit_attrs(
        &ds,
        &units("Temperatures of the gas particles", 0.0, 0.0, 0.0, 1.0, 0.0),
    )?;
    let u: Vec<f32> = temp.iter().map(|t| t * 1.2e-4).collect();
    let ds = dataset(g, "InternalEnergies", &u, 0, false)?;
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
    let ds = dataset(g, "SmoothingLengths", &hsml, 0, false)?;
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
    let ds = dataset(g, "StarFormationRates", &sfr, 0, false)?;
    write_unit_attrs(
        &ds,
        &units("Star formation rates of the gas", 0.0, 1.0, -1.0, 0.0, 0.0),
    )?;
    let flag: Vec<bool> = sfr.iter().map(|&r| r > 0.0).collect();
    let ds = dataset(g, "IsStarForming", &flag, 0, false)?;
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
    let ds = dataset(g, "ElementMassFractions", &frac, 9, false)?;
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
    let parts: Vec<Particles> = TYPES
        .iter()
        .zip(counts)
        .map(|(&t, n)| generate(opts.seed, t, n, &halos))
        .collect();
    let mut total = [0u64; 7];
    for p in &parts {
        total[p.ptype] = p.pos.len() as u64;
    }
    let ncells = CELLS_PER_SIDE.pow(3);
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
    write_header(&file, f, files, &this_file, total)?;
    for fs in &slices {
        let g = file.create_group(&format!("PartType{}", fs.p.ptype))?;
        write_particles(&g, fs, seed, total)?;
    }
    file.link_soft("/PartType0", "GasParticles")?;
    file.link_soft("/PartType1", "DMParticles")?;
    file.link_soft("/PartType4", "StarsParticles")?;
    write_cells(&file, parts, cell_file)?;
    write_extra(&file, seed)?;
    file.close()
}

fn write_header(
    file: &File,
    f: usize,
    files: usize,
    this_file: &[u64; 7],
    total: &[u64; 7],
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
    attr(&h, "NumFilesPerSnapshot", &[files as i32])?;
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
    let c = file.create_group("Cosmology")?;
    for (k, v) in [
        ("h", 0.6777),
        ("Omega_m", 0.307),
        ("Omega_lambda", 0.693),
        ("Omega_b", 0.0482),
        ("Omega_r", 0.0),
        ("Redshift", REDSHIFT),
        ("Scale-factor", a),
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
    let code = file.create_group("Code")?;
    scalar(&code, "Code", &fixed_str::<5>("SWIFT"))?;
    let git: VarLenUnicode = "hdfstream-sample v1".parse().unwrap_or_default();
    scalar(&code, "Git Revision", &git)?;
    Ok(())
}

fn write_cells(file: &File, parts: &[Particles], cell_file: &[i32]) -> hdf5_metno::Result<()> {
    let g = CELLS_PER_SIDE;
    let cells = file.create_group("Cells")?;
    let meta = cells.create_group("Meta-data")?;
    attr(&meta, "dimension", &[g as i32; 3])?;
    attr(&meta, "size", &[BOX_SIZE / g as f64; 3])?;
    attr(&meta, "nr_cells", &[(g * g * g) as i32])?;
    let w = BOX_SIZE / g as f64;
    let centres: Vec<f64> = (0..g * g * g)
        .flat_map(|c| [c / (g * g), (c / g) % g, c % g].map(|i| (i as f64 + 0.5) * w))
        .collect();
    dataset(&cells, "Centres", &centres, 3, false)?;
    let counts = cells.create_group("Counts")?;
    let offsets = cells.create_group("OffsetsInFile")?;
    let filesg = cells.create_group("Files")?;
    for p in parts {
        let name = format!("PartType{}", p.ptype);
        let c: Vec<i64> = p.cell_counts.iter().map(|&n| n as i64).collect();
        dataset(&counts, &name, &c, 0, false)?;
        // Offset of each cell within the file that holds it.
        let mut off = Vec::with_capacity(c.len());
        let mut acc = 0i64;
        for (i, &n) in c.iter().enumerate() {
            if i > 0 && cell_file[i] != cell_file[i - 1] {
                acc = 0;
            }
            off.push(acc);
            acc += n;
        }
        dataset(&offsets, &name, &off, 0, false)?;
        dataset(&filesg, &name, cell_file, 0, false)?;
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
    dataset(&g, "ID", &ids, 0, false)?;
    let ds = dataset(&g, "Mass", &halos.mass, 0, false)?;
    write_unit_attrs(&ds, &units("Halo masses", 0.0, 1.0, 0.0, 0.0, 0.0))?;
    let c: Vec<f64> = halos.centre.iter().flatten().copied().collect();
    let ds = dataset(&g, "Centre", &c, 3, false)?;
    write_unit_attrs(
        &ds,
        &units("Co-moving halo centres", 1.0, 0.0, 0.0, 0.0, 1.0),
    )?;
    let v: Vec<f32> = halos.velocity.iter().flatten().copied().collect();
    dataset(&g, "Velocity", &v, 3, false)?;
    dataset(&g, "Radius", &halos.radius, 0, false)?;
    dataset(&g, "NumParticles", &members, 0, false)?;
    file.close()
}
