//! Which rows a scan reads: the region's rows, then the `n_rows` slice, then what the
//! predicate's row-index conditions and position bounds allow.
//!
//! Every step only ever keeps a superset of the rows the query needs: the Python layer
//! evaluates the whole predicate again on each batch.

use hdfstream::RowRanges;
use hdfstream::table::Bounds;

use crate::predicate::{Closed, CmpOp, Num, Operand, Pred};

/// Most boxes a position condition may expand into before the analysis gives up.
const MAX_BOXES: usize = 64;

/// Rows a predicate may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSet {
    /// Superset of the matching rows (global row numbers).
    pub ranges: RowRanges,
    /// True when exactly these rows match.
    pub exact: bool,
}

/// The virtual row index of a table (its value is the global row number).
#[derive(Debug, Clone, Copy)]
pub struct RowIndex<'a> {
    /// The column's name.
    pub name: &'a str,
    /// Rows of the table.
    pub total: u64,
}

/// The first `n` rows of `rows`.
pub fn take_first(rows: &RowRanges, n: u64) -> RowRanges {
    let mut left = n;
    let mut out = Vec::new();
    for r in rows.iter() {
        if left == 0 {
            break;
        }
        let end = r.end.min(r.start.saturating_add(left));
        left -= end - r.start;
        out.push(r.start..end);
    }
    RowRanges::from_ranges(out)
}

/// A float as an integer bound (`None` for NaN; infinities become huge values).
fn float_bound(f: f64) -> Option<i128> {
    (!f.is_nan()).then(|| f.clamp(-1e30, 1e30) as i128)
}

impl RowIndex<'_> {
    fn all(&self) -> RowRanges {
        RowRanges::from_ranges(std::iter::once(0..self.total))
    }

    fn unknown(&self) -> RowSet {
        RowSet {
            ranges: self.all(),
            exact: false,
        }
    }

    fn exact(ranges: RowRanges) -> RowSet {
        RowSet {
            ranges,
            exact: true,
        }
    }

    /// Rows whose index lies in `[lo, hi)`.
    fn span(&self, lo: i128, hi: i128) -> RowRanges {
        let total = i128::from(self.total);
        let (lo, hi) = (lo.clamp(0, total), hi.clamp(0, total));
        match (u64::try_from(lo), u64::try_from(hi)) {
            (Ok(a), Ok(b)) if a < b => RowRanges::from_ranges(std::iter::once(a..b)),
            _ => RowRanges::new(),
        }
    }

    fn complement(&self, r: &RowRanges) -> RowRanges {
        let mut out = Vec::with_capacity(r.run_count() + 1);
        let mut at = 0;
        for run in r.iter() {
            if run.start > at {
                out.push(at..run.start);
            }
            at = at.max(run.end);
        }
        if at < self.total {
            out.push(at..self.total);
        }
        RowRanges::from_ranges(out)
    }

    /// Rows where `index <op> v` holds (`None` when it cannot tell).
    fn compare(&self, op: CmpOp, v: Num) -> Option<RowRanges> {
        const LOW: i128 = i128::MIN / 4;
        const HIGH: i128 = i128::MAX / 4;
        let (lo, hi) = match (op, v) {
            (CmpOp::Lt, Num::Int(v)) => (LOW, v),
            (CmpOp::Lt, Num::Float(f)) => (LOW, float_bound(f.ceil())?),
            (CmpOp::LtEq, Num::Int(v)) => (LOW, v.saturating_add(1)),
            (CmpOp::LtEq, Num::Float(f)) => (LOW, float_bound(f.floor())?.saturating_add(1)),
            (CmpOp::Gt, Num::Int(v)) => (v.saturating_add(1), HIGH),
            (CmpOp::Gt, Num::Float(f)) => (float_bound(f.floor())?.saturating_add(1), HIGH),
            (CmpOp::GtEq, Num::Int(v)) => (v, HIGH),
            (CmpOp::GtEq, Num::Float(f)) => (float_bound(f.ceil())?, HIGH),
            (CmpOp::Eq, Num::Int(v)) => (v, v.saturating_add(1)),
            (CmpOp::Eq, Num::Float(f)) => {
                let v = float_bound(f)?;
                if f.fract() == 0.0 {
                    (v, v.saturating_add(1))
                } else {
                    (0, 0)
                }
            }
            (CmpOp::NotEq, v) => {
                let eq = self.compare(CmpOp::Eq, v)?;
                return Some(self.complement(&eq));
            }
        };
        Some(self.span(lo, hi))
    }

    fn is_index(&self, x: &Operand) -> bool {
        matches!(x, Operand::Column(c) if c == self.name)
    }

    /// The rows `p` may match, and whether exactly those.
    pub fn analyze(&self, p: &Pred) -> RowSet {
        match p {
            Pred::And(a, b) => {
                let (a, b) = (self.analyze(a), self.analyze(b));
                RowSet {
                    ranges: a.ranges.intersection(&b.ranges),
                    exact: a.exact && b.exact,
                }
            }
            Pred::Or(a, b) => {
                let (a, b) = (self.analyze(a), self.analyze(b));
                RowSet {
                    ranges: a.ranges.union(&b.ranges),
                    exact: a.exact && b.exact,
                }
            }
            Pred::Not(a) => {
                let a = self.analyze(a);
                if a.exact {
                    Self::exact(self.complement(&a.ranges))
                } else {
                    self.unknown()
                }
            }
            Pred::Lit(true) => Self::exact(self.all()),
            Pred::Lit(false) => Self::exact(RowRanges::new()),
            Pred::Cmp { x, op, v } if self.is_index(x) => match self.compare(*op, *v) {
                Some(r) => Self::exact(r),
                None => self.unknown(),
            },
            Pred::Between { x, lo, hi, closed } if self.is_index(x) => {
                let (lo_op, hi_op) = match closed {
                    Closed::Both => (CmpOp::GtEq, CmpOp::LtEq),
                    Closed::Left => (CmpOp::GtEq, CmpOp::Lt),
                    Closed::Right => (CmpOp::Gt, CmpOp::LtEq),
                    Closed::None => (CmpOp::Gt, CmpOp::Lt),
                };
                match (self.compare(lo_op, *lo), self.compare(hi_op, *hi)) {
                    (Some(a), Some(b)) => Self::exact(a.intersection(&b)),
                    _ => self.unknown(),
                }
            }
            Pred::IsIn { x, values } if self.is_index(x) => {
                let mut rows = Vec::with_capacity(values.len());
                for v in values {
                    let i = match *v {
                        Num::Int(i) => i,
                        Num::Float(f) if f.fract() == 0.0 && f.abs() < 1e30 => f as i128,
                        Num::Float(_) => continue,
                    };
                    if let Ok(r) = u64::try_from(i)
                        && r < self.total
                    {
                        rows.push(r);
                    }
                }
                Self::exact(RowRanges::from_rows(rows))
            }
            _ => self.unknown(),
        }
    }
}

/// The union of boxes every row matching `p` has its `position` column in; `None` when `p`
/// does not bound the positions (as far as the analysis can tell).
pub fn boxes(p: &Pred, position: &str) -> Option<Vec<Bounds>> {
    let out = match p {
        Pred::And(a, b) => match (boxes(a, position), boxes(b, position)) {
            (Some(a), Some(b)) => {
                if a.len().saturating_mul(b.len()) > MAX_BOXES {
                    return None;
                }
                a.iter()
                    .flat_map(|x| b.iter().map(move |y| x.intersect(y)))
                    .filter(|x| !x.is_empty())
                    .collect()
            }
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return None,
        },
        Pred::Or(a, b) => {
            let mut a = boxes(a, position)?;
            a.extend(boxes(b, position)?);
            a
        }
        Pred::Lit(false) => Vec::new(),
        Pred::Cmp {
            x: Operand::Component { column, axis },
            op,
            v,
        } if column == position => {
            let v = v.to_f64()?;
            let mut b = Bounds::default();
            let (lo, hi) = (b.lo.get_mut(*axis)?, b.hi.get_mut(*axis)?);
            match op {
                CmpOp::Lt | CmpOp::LtEq => *hi = v,
                CmpOp::Gt | CmpOp::GtEq => *lo = v,
                CmpOp::Eq => (*lo, *hi) = (v, v),
                CmpOp::NotEq => return None,
            }
            nonempty(b)
        }
        Pred::Between {
            x: Operand::Component { column, axis },
            lo,
            hi,
            ..
        } if column == position => {
            let mut b = Bounds::default();
            *b.lo.get_mut(*axis)? = lo.to_f64()?;
            *b.hi.get_mut(*axis)? = hi.to_f64()?;
            nonempty(b)
        }
        _ => return None,
    };
    (out.len() <= MAX_BOXES).then_some(out)
}

fn nonempty(b: Bounds) -> Vec<Bounds> {
    if b.is_empty() { Vec::new() } else { vec![b] }
}

/// What the planner needs to know about a table.
#[derive(Debug, Clone, Copy)]
pub struct TableInfo<'a> {
    /// Rows of the table.
    pub total: u64,
    /// The row-index column, if the table has one.
    pub row_index: Option<&'a str>,
    /// The `(N, 3)` position column, if the table has one.
    pub position: Option<&'a str>,
}

/// The rows a scan reads, and how they were found.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Global rows to fetch.
    pub rows: RowRanges,
    /// True when exactly the predicate's rows are fetched (no evaluation needed; the
    /// Python layer evaluates it anyway).
    pub exact: bool,
    /// Position bounds the cells were selected by, if any.
    pub boxes: Option<Vec<Bounds>>,
}

/// Plans a scan: `base` (every row, or the region's), its first `n_rows` rows, then the rows
/// the predicate's row-index conditions allow, then the rows of the cells its position
/// bounds touch (`cells` maps bounds to global rows; `None` when there is no cell index).
pub fn plan_rows(
    info: TableInfo<'_>,
    base: RowRanges,
    n_rows: Option<u64>,
    predicate: Option<&Pred>,
    cells: impl FnOnce(&[Bounds]) -> Option<RowRanges>,
) -> Planned {
    let mut rows = match n_rows {
        Some(n) => take_first(&base, n),
        None => base,
    };
    let Some(p) = predicate else {
        return Planned {
            rows,
            exact: true,
            boxes: None,
        };
    };
    let mut exact = false;
    if let Some(name) = info.row_index {
        let set = RowIndex {
            name,
            total: info.total,
        }
        .analyze(p);
        rows = rows.intersection(&set.ranges);
        exact = set.exact;
    }
    let mut used = None;
    if !exact
        && let Some(position) = info.position
        && let Some(b) = boxes(p, position)
    {
        if let Some(r) = cells(&b) {
            rows = rows.intersection(&r);
        }
        used = Some(b);
    }
    Planned {
        rows,
        exact,
        boxes: used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predicate::parse_json;

    fn ranges(r: &[(u64, u64)]) -> RowRanges {
        RowRanges::from_ranges(r.iter().map(|&(a, b)| a..b))
    }

    fn ri(p: &str) -> RowSet {
        RowIndex {
            name: "row_index",
            total: 100,
        }
        .analyze(&parse_json(p))
    }

    fn cmp(op: &str, lit: &str) -> String {
        format!(
            r#"{{"BinaryExpr":{{"left":{{"Column":"row_index"}},"op":"{op}","right":{{"Literal":{lit}}}}}}}"#
        )
    }

    #[test]
    fn row_index_comparisons_against_a_brute_force_oracle() {
        let lits: [(&str, f64); 8] = [
            (r#"{"Scalar":{"UInt64":10}}"#, 10.0),
            (r#"{"Scalar":{"Int64":-3}}"#, -3.0),
            (r#"{"Scalar":{"UInt64":250}}"#, 250.0),
            (r#"{"Dyn":{"Int":0}}"#, 0.0),
            (r#"{"Scalar":{"Float64":20.5}}"#, 20.5),
            (r#"{"Scalar":{"Float64":-0.5}}"#, -0.5),
            (r#"{"Scalar":{"Float64":99.0}}"#, 99.0),
            (r#"{"Dyn":{"Float":7.25}}"#, 7.25),
        ];
        type Oracle = fn(f64, f64) -> bool;
        let ops: [(&str, Oracle); 6] = [
            ("Lt", |a, b| a < b),
            ("LtEq", |a, b| a <= b),
            ("Gt", |a, b| a > b),
            ("GtEq", |a, b| a >= b),
            ("Eq", |a, b| a == b),
            ("NotEq", |a, b| a != b),
        ];
        for (lit, v) in lits {
            for (op, f) in ops {
                let got = ri(&cmp(op, lit));
                let want = RowRanges::from_rows((0..100u64).filter(|&i| f(i as f64, v)));
                assert_eq!(got.ranges, want, "{op} {lit}");
                assert!(got.exact);
            }
        }
    }

    #[test]
    fn row_index_combinations() {
        let and = format!(
            r#"{{"BinaryExpr":{{"left":{},"op":"And","right":{}}}}}"#,
            cmp("GtEq", r#"{"Scalar":{"UInt64":10}}"#),
            cmp("Lt", r#"{"Scalar":{"UInt64":20}}"#)
        );
        assert_eq!(ri(&and).ranges, ranges(&[(10, 20)]));
        let not = format!(r#"{{"Function":{{"input":[{and}],"function":{{"Boolean":"Not"}}}}}}"#);
        let got = ri(&not);
        assert_eq!(got.ranges, ranges(&[(0, 10), (20, 100)]));
        assert!(got.exact);
        // An unknown conjunct: still narrowed, but not exact; an unknown disjunct: everything.
        let masses = r#"{"BinaryExpr":{"left":{"Column":"Masses"},"op":"Gt","right":{"Literal":{"Scalar":{"Float32":1.0}}}}}"#;
        let got = ri(&format!(
            r#"{{"BinaryExpr":{{"left":{and},"op":"And","right":{masses}}}}}"#
        ));
        assert_eq!(got.ranges, ranges(&[(10, 20)]));
        assert!(!got.exact);
        let got = ri(&format!(
            r#"{{"BinaryExpr":{{"left":{and},"op":"Or","right":{masses}}}}}"#
        ));
        assert_eq!(got.ranges, ranges(&[(0, 100)]));
        // Not of something unknown stays unknown.
        let got = ri(&format!(
            r#"{{"Function":{{"input":[{masses}],"function":{{"Boolean":"Not"}}}}}}"#
        ));
        assert_eq!(got.ranges, ranges(&[(0, 100)]));
        assert!(!got.exact);
        let between = r#"{"Function":{"input":[{"Column":"row_index"},{"Literal":{"Scalar":{"UInt64":3}}},{"Literal":{"Scalar":{"UInt64":8}}}],"function":{"Boolean":{"IsBetween":{"closed":"Left"}}}}}"#;
        assert_eq!(ri(between).ranges, ranges(&[(3, 8)]));
        let isin = r#"{"Function":{"input":[{"Column":"row_index"},{"Literal":{"NumList":[5,1,3,500,2.0,2.5]}}],"function":{"Boolean":{"IsIn":{"nulls_equal":false}}}}}"#;
        assert_eq!(ri(isin).ranges, ranges(&[(1, 4), (5, 6)]));
        assert_eq!(
            ri(r#"{"Literal":{"Scalar":{"Boolean":false}}}"#).ranges,
            RowRanges::new()
        );
    }

    fn get(axis: i32, op: &str, v: f64) -> String {
        format!(
            r#"{{"BinaryExpr":{{"left":{{"Function":{{"input":[{{"Column":"Coordinates"}},{{"Literal":{{"Dyn":{{"Int":{axis}}}}}}}],"function":{{"ArrayExpr":{{"Get":false}}}}}}}},"op":"{op}","right":{{"Literal":{{"Scalar":{{"Float64":{v:?}}}}}}}}}}}"#
        )
    }

    fn and(a: &str, b: &str) -> String {
        format!(r#"{{"BinaryExpr":{{"left":{a},"op":"And","right":{b}}}}}"#)
    }

    fn or(a: &str, b: &str) -> String {
        format!(r#"{{"BinaryExpr":{{"left":{a},"op":"Or","right":{b}}}}}"#)
    }

    #[test]
    fn position_boxes() {
        let p = parse_json(&and(&get(0, "GtEq", 1.0), &get(0, "Lt", 2.0)));
        let b = boxes(&p, "Coordinates").expect("a box");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].lo, [1.0, f64::NEG_INFINITY, f64::NEG_INFINITY]);
        assert_eq!(b[0].hi, [2.0, f64::INFINITY, f64::INFINITY]);
        // Another column's name, or != : no bounds.
        assert!(boxes(&p, "Velocities").is_none());
        assert!(boxes(&parse_json(&get(1, "NotEq", 1.0)), "Coordinates").is_none());
        // Union of two boxes; a contradiction is empty.
        let u = parse_json(&or(&get(0, "Lt", 1.0), &get(2, "Gt", 5.0)));
        assert_eq!(boxes(&u, "Coordinates").map(|b| b.len()), Some(2));
        let c = parse_json(&and(&get(0, "Lt", 1.0), &get(0, "Gt", 2.0)));
        assert_eq!(boxes(&c, "Coordinates").map(|b| b.len()), Some(0));
        // Or with an unknown side bounds nothing; And with one keeps the known side.
        let masses = r#"{"BinaryExpr":{"left":{"Column":"Masses"},"op":"Gt","right":{"Literal":{"Scalar":{"Float32":1.0}}}}}"#;
        assert!(boxes(&parse_json(&or(&get(0, "Lt", 1.0), masses)), "Coordinates").is_none());
        assert_eq!(
            boxes(&parse_json(&and(masses, &get(0, "Lt", 1.0))), "Coordinates").map(|b| b.len()),
            Some(1)
        );
    }

    #[test]
    fn plan_order_region_slice_predicate_cells() {
        let info = TableInfo {
            total: 100,
            row_index: Some("row_index"),
            position: Some("Coordinates"),
        };
        let region = ranges(&[(10, 20), (50, 60)]);
        // n_rows slices the region's rows before the predicate narrows them.
        let p = parse_json(&cmp("GtEq", r#"{"Scalar":{"UInt64":15}}"#));
        let got = plan_rows(info, region.clone(), Some(12), Some(&p), |_| None);
        assert_eq!(got.rows, ranges(&[(15, 20), (50, 52)]));
        assert!(got.exact);
        // Position bounds: the rows of the touched cells are intersected.
        let p = parse_json(&get(1, "Lt", 3.0));
        let got = plan_rows(info, region, None, Some(&p), |b| {
            assert_eq!(b.len(), 1);
            Some(ranges(&[(0, 12), (55, 100)]))
        });
        assert_eq!(got.rows, ranges(&[(10, 12), (55, 60)]));
        assert!(!got.exact);
        assert!(got.boxes.is_some());
        // Without a row index the row conditions cannot narrow.
        let no_index = TableInfo {
            row_index: None,
            ..info
        };
        let p = parse_json(&cmp("Lt", r#"{"Scalar":{"UInt64":5}}"#));
        let all = ranges(&[(0, 100)]);
        let got = plan_rows(no_index, all.clone(), None, Some(&p), |_| None);
        assert_eq!(got.rows, all);
        assert!(!got.exact);
    }

    #[test]
    fn take_first_counts_rows_over_runs() {
        let r = ranges(&[(0, 3), (10, 20)]);
        assert_eq!(take_first(&r, 0), RowRanges::new());
        assert_eq!(take_first(&r, 5), ranges(&[(0, 3), (10, 12)]));
        assert_eq!(take_first(&r, 50), r);
    }
}
