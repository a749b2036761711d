//! Spatial regions: unions of axis-aligned boxes in a periodic volume.
//!
//! A box bounds each axis by `[lo, hi)`; `lo > hi` wraps across the periodic boundary (the
//! box covers `[lo, L) ∪ [0, hi)` for a box side `L`), and an unbounded axis takes every
//! position. Bounds may lie anywhere in `[-L/2, 3L/2]`, the window swiftsimio accepts, so a
//! box centred near an edge can be written without wrapping (`-1:1` on an axis of a box of
//! side 25 is the same as `24:1`).

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Bounds of a box on one axis: `[lo, hi)` in the snapshot's length units; `lo > hi` wraps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisRange {
    /// Lower bound (inclusive).
    pub lo: f64,
    /// Upper bound (exclusive).
    pub hi: f64,
}

/// An axis-aligned box; an axis without bounds takes every position.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RegionBox {
    /// Bounds on x, y and z.
    pub axes: [Option<AxisRange>; 3],
}

/// A union of boxes: the spatial part of a query (see the [`table`](crate::table) module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Region {
    boxes: Vec<RegionBox>,
}

/// One axis of a box as tested against a periodic volume of side `side`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Window {
    /// Every position.
    All,
    /// `[lo, hi)` with `lo <= hi`, within `[-side/2, 3 side/2]`; positions are tested with
    /// their periodic copies shifted by `-side`, `0` and `+side`.
    Range(f64, f64),
}

impl AxisRange {
    /// The bounds `[lo, hi)`.
    pub fn new(lo: f64, hi: f64) -> Self {
        Self { lo, hi }
    }

    /// The test window in a periodic volume of side `side` (swiftsimio's rules: bounds must
    /// lie in `[-side/2, 3 side/2]`; a range longer than the box takes everything; a wrapped
    /// range is shifted by one box side into a plain one).
    pub(crate) fn window(&self, side: f64, axis: usize) -> Result<Window> {
        let (mut lo, mut hi) = (self.lo, self.hi);
        let name = AXES[axis.min(2)];
        if !lo.is_finite() || !hi.is_finite() {
            return Err(bad(format!(
                "{name} bounds {lo}:{hi} are not finite numbers"
            )));
        }
        if !(side.is_finite() && side > 0.0) {
            return Err(bad(format!("the box side along {name} is {side}")));
        }
        let (min, max) = (-side / 2.0, 1.5 * side);
        if lo < min || hi < min || lo > max || hi > max {
            return Err(bad(format!(
                "{name} bounds {lo}:{hi} must lie in [{min}, {max}] (the box side is {side}: \
                 at most one periodic copy on either side)"
            )));
        }
        if (hi - lo).abs() > side {
            return Ok(Window::All);
        }
        if hi < lo {
            if lo > side / 2.0 {
                lo -= side;
            } else {
                hi += side;
            }
        }
        Ok(Window::Range(lo, hi))
    }
}

const AXES: [&str; 3] = ["x", "y", "z"];

fn bad(reason: String) -> Error {
    Error::InvalidSelection { reason }
}

impl Window {
    /// True when the position `x` (in `[0, side)`, or anywhere for an unbounded window) or one
    /// of its periodic copies lies in the window.
    pub(crate) fn contains(self, x: f64, side: f64) -> bool {
        match self {
            Window::All => true,
            Window::Range(lo, hi) => [-side, 0.0, side].iter().any(|s| {
                let y = x + s;
                lo <= y && y < hi
            }),
        }
    }

    /// True when the extent `(min, max)` (or a periodic copy of it) overlaps the window, with
    /// strict comparisons as swiftsimio makes them.
    pub(crate) fn overlaps(self, min: f64, max: f64, side: f64) -> bool {
        match self {
            Window::All => true,
            Window::Range(lo, hi) => [-side, 0.0, side]
                .iter()
                .any(|s| max + s > lo && min + s < hi),
        }
    }
}

impl RegionBox {
    /// A box bounded on all three axes.
    pub fn new(x: (f64, f64), y: (f64, f64), z: (f64, f64)) -> Self {
        Self {
            axes: [x, y, z].map(|(lo, hi)| Some(AxisRange::new(lo, hi))),
        }
    }

    /// The same box with `axis` (0 = x, 1 = y, 2 = z) bounded by `[lo, hi)`.
    pub fn with_axis(mut self, axis: usize, lo: f64, hi: f64) -> Self {
        if let Some(a) = self.axes.get_mut(axis) {
            *a = Some(AxisRange::new(lo, hi));
        }
        self
    }

    /// The three test windows for a volume of sides `box_size`.
    pub(crate) fn windows(&self, box_size: [f64; 3]) -> Result<[Window; 3]> {
        let mut out = [Window::All; 3];
        for (axis, (w, a)) in out.iter_mut().zip(&self.axes).enumerate() {
            if let Some(a) = a {
                *w = a.window(box_size[axis], axis)?;
            }
        }
        Ok(out)
    }
}

/// Parses `x0:x1,y0:y1,z0:z1`; an axis written `:` (or left empty) is unbounded.
impl FromStr for RegionBox {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(',').collect();
        if parts.len() != 3 {
            return Err(bad(format!(
                "region `{s}` must have three axes `x0:x1,y0:y1,z0:z1` (`:` for an unbounded axis)"
            )));
        }
        let mut b = RegionBox::default();
        for (axis, part) in parts.iter().enumerate() {
            let part = part.trim();
            if part.is_empty() || part == ":" {
                continue;
            }
            let Some((lo, hi)) = part.split_once(':') else {
                return Err(bad(format!(
                    "region axis `{part}` of `{s}` must be `lo:hi`"
                )));
            };
            let num = |t: &str| {
                t.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad(format!("`{t}` in region `{s}` is not a finite number")))
            };
            b.axes[axis] = Some(AxisRange::new(num(lo)?, num(hi)?));
        }
        Ok(b)
    }
}

impl fmt::Display for RegionBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.axes.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match a {
                Some(a) => write!(f, "{}:{}", a.lo, a.hi)?,
                None => f.write_str(":")?,
            }
        }
        Ok(())
    }
}

impl Region {
    /// The empty union (selects nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// A region of one box.
    pub fn from_box(b: RegionBox) -> Self {
        Self { boxes: vec![b] }
    }

    /// The union of this region and the box `b`.
    pub fn with_box(mut self, b: RegionBox) -> Self {
        self.boxes.push(b);
        self
    }

    /// Parses one or more boxes written `x0:x1,y0:y1,z0:z1` (a union).
    pub fn parse<I, S>(boxes: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let boxes = boxes
            .into_iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<RegionBox>>>()?;
        Ok(Self { boxes })
    }

    /// The boxes of the union.
    pub fn boxes(&self) -> &[RegionBox] {
        &self.boxes
    }

    /// True when the union has no box.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// The test windows of every box for a volume of sides `box_size` (validates bounds).
    pub(crate) fn windows(&self, box_size: [f64; 3]) -> Result<Vec<[Window; 3]>> {
        self.boxes.iter().map(|b| b.windows(box_size)).collect()
    }

    /// True when `pos` (or a periodic copy) lies in one of the boxes.
    pub fn contains(&self, pos: [f64; 3], box_size: [f64; 3]) -> Result<bool> {
        Ok(contains_any(&self.windows(box_size)?, pos, box_size))
    }
}

/// True when `pos` lies in one of the boxes given by their windows.
pub(crate) fn contains_any(windows: &[[Window; 3]], pos: [f64; 3], box_size: [f64; 3]) -> bool {
    windows.iter().any(|w| {
        w.iter()
            .zip(pos.iter().zip(&box_size))
            .all(|(w, (&x, &side))| w.contains(x, side))
    })
}

/// Closed bounds `[lo, hi]` per axis on raw positions (`±∞`: unbounded), as a filter on
/// the position column implies them (e.g. `x >= 1 and x <= 2`); unlike a [`RegionBox`] they
/// do not wrap around the box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Lower bounds.
    pub lo: [f64; 3],
    /// Upper bounds.
    pub hi: [f64; 3],
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            lo: [f64::NEG_INFINITY; 3],
            hi: [f64::INFINITY; 3],
        }
    }
}

impl Bounds {
    /// True when no position can satisfy the bounds.
    pub fn is_empty(&self) -> bool {
        (0..3).any(|a| {
            self.lo[a]
                .partial_cmp(&self.hi[a])
                .is_none_or(|o| o.is_gt())
        })
    }

    /// The bounds both `self` and `other` impose.
    pub fn intersect(&self, other: &Self) -> Self {
        let mut out = *self;
        for a in 0..3 {
            out.lo[a] = out.lo[a].max(other.lo[a]);
            out.hi[a] = out.hi[a].min(other.hi[a]);
        }
        out
    }

    /// True when a particle of a cell with extent `[min, max]` may satisfy the bounds on
    /// every axis: either at its raw position (anywhere in the extent), or wrapped into the
    /// box `[0, side]` (the extent of drifted particles may reach past the box faces while
    /// the positions written are wrapped, so the periodic copies are clipped to the box).
    pub(crate) fn overlaps(&self, min: [f64; 3], max: [f64; 3], box_size: [f64; 3]) -> bool {
        (0..3).all(|a| {
            let (lo, hi, side) = (self.lo[a], self.hi[a], box_size[a]);
            let hits = |a0: f64, a1: f64| a0 <= a1 && a1 >= lo && a0 <= hi;
            hits(min[a], max[a])
                || [-side, 0.0, side]
                    .iter()
                    .any(|s| hits((min[a] + s).max(0.0), (max[a] + s).min(side)))
        })
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.boxes.iter().enumerate() {
            if i > 0 {
                f.write_str(" ∪ ")?;
            }
            write!(f, "[{b}]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: [f64; 3] = [10.0; 3];

    #[test]
    fn parse_and_display() {
        let b: RegionBox = "1:2, :,-1:0.5".parse().unwrap();
        assert_eq!(b.axes[0], Some(AxisRange::new(1.0, 2.0)));
        assert_eq!(b.axes[1], None);
        assert_eq!(b.axes[2], Some(AxisRange::new(-1.0, 0.5)));
        assert_eq!(b.to_string(), "1:2,:,-1:0.5");
        for bad in [
            "1:2,3:4",
            "1:2,3:4,5",
            "a:1,:,:",
            "1:nan,:,:",
            "1:2,3:4,5:6,7:8",
        ] {
            assert!(bad.parse::<RegionBox>().is_err(), "{bad}");
        }
    }

    #[test]
    fn wrapped_and_shifted_boxes_agree() {
        let wrapped = Region::parse(["9:1,:,:"]).unwrap();
        let shifted = Region::parse(["-1:1,:,:"]).unwrap();
        for x in [0.0, 0.5, 0.99, 1.0, 5.0, 8.99, 9.0, 9.5] {
            let p = [x, 3.0, 3.0];
            assert_eq!(
                wrapped.contains(p, L).unwrap(),
                shifted.contains(p, L).unwrap(),
                "{x}"
            );
            assert_eq!(
                wrapped.contains(p, L).unwrap(),
                !(1.0..9.0).contains(&x),
                "{x}"
            );
        }
    }

    #[test]
    fn bounds_outside_the_window_are_refused() {
        let r = Region::parse(["-6:1,:,:"]).unwrap();
        assert!(r.contains([0.0; 3], L).is_err());
        let r = Region::parse(["0:16,:,:"]).unwrap();
        assert!(r.contains([0.0; 3], L).is_err());
        // Longer than the box: everything.
        let r = Region::parse(["-2:12,:,:"]).unwrap();
        assert!(r.contains([5.0, 0.0, 0.0], L).unwrap());
    }

    #[test]
    fn union_and_empty() {
        let r = Region::parse(["0:1,0:1,0:1", "5:6,5:6,5:6"]).unwrap();
        assert!(r.contains([0.5; 3], L).unwrap());
        assert!(r.contains([5.5; 3], L).unwrap());
        assert!(!r.contains([3.0; 3], L).unwrap());
        assert!(!Region::new().contains([0.5; 3], L).unwrap());
    }
}
