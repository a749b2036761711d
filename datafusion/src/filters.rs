//! DataFusion filters the table can use: ranges of the row index (applied exactly) and
//! bounds on the position column's components (pruned by `Cells/`, re-checked by DataFusion).

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use hdfstream::RowRanges;
use hdfstream::table::Bounds;

/// Most boxes a union of position bounds may grow to before it is given up (the filter is
/// then not used for pruning).
const MAX_BOXES: usize = 64;

/// What the table knows about its columns, for translating filters.
#[derive(Debug, Clone)]
pub(crate) struct FilterContext {
    /// Name and first value of the row-index column.
    pub(crate) row_index: Option<(String, u64)>,
    /// Name of the `(N, 3)` position column, when pruning by it is possible.
    pub(crate) position: Option<String>,
    /// Rows of the table.
    pub(crate) total: u64,
}

/// An integer literal (any width), or `None`.
fn int_literal(e: &Expr) -> Option<i128> {
    let Expr::Literal(v, _) = strip(e) else {
        return None;
    };
    Some(match v {
        ScalarValue::Int8(Some(x)) => i128::from(*x),
        ScalarValue::Int16(Some(x)) => i128::from(*x),
        ScalarValue::Int32(Some(x)) => i128::from(*x),
        ScalarValue::Int64(Some(x)) => i128::from(*x),
        ScalarValue::UInt8(Some(x)) => i128::from(*x),
        ScalarValue::UInt16(Some(x)) => i128::from(*x),
        ScalarValue::UInt32(Some(x)) => i128::from(*x),
        ScalarValue::UInt64(Some(x)) => i128::from(*x),
        // Comparisons of u64 with negative integers are coerced to decimals.
        ScalarValue::Decimal128(Some(x), _, 0) => *x,
        _ => return None,
    })
}

/// A numeric literal as f64, or `None`.
fn float_literal(e: &Expr) -> Option<f64> {
    let Expr::Literal(v, _) = strip(e) else {
        return None;
    };
    match v {
        ScalarValue::Float32(Some(x)) => Some(f64::from(*x)),
        ScalarValue::Float64(Some(x)) => Some(*x),
        ScalarValue::Decimal128(Some(x), _, scale) => {
            Some(*x as f64 / 10f64.powi(i32::from(*scale)))
        }
        _ => int_literal(e).map(|x| x as f64),
    }
}

/// The expression under casts (widening casts keep the comparison's meaning for the values
/// these columns hold).
fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip(&c.expr),
        Expr::TryCast(c) => strip(&c.expr),
        other => other,
    }
}

fn is_column(e: &Expr, name: &str) -> bool {
    matches!(strip(e), Expr::Column(c) if c.name == name)
}

/// The axis (0, 1, 2) of `pos[k]` (`array_element(pos, k)`, 1-based as in SQL).
fn axis_of(e: &Expr, position: &str) -> Option<usize> {
    let Expr::ScalarFunction(f) = strip(e) else {
        return None;
    };
    if f.func.name() != "array_element" {
        return None;
    }
    match f.args.as_slice() {
        [col, k] if is_column(col, position) => match int_literal(k)? {
            k @ 1..=3 => usize::try_from(k - 1).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The operator with its operands swapped (`a < b` ⇔ `b > a`).
fn flip(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Eq => Operator::Eq,
        Operator::NotEq => Operator::NotEq,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        _ => return None,
    })
}

impl FilterContext {
    /// Global rows whose row-index value lies in `[lo, hi)` (values, not rows).
    fn value_range(&self, lo: i128, hi: i128) -> RowRanges {
        let base = i128::from(self.row_index.as_ref().map_or(0, |r| r.1));
        let total = i128::from(self.total);
        let (a, b) = ((lo - base).clamp(0, total), (hi - base).clamp(0, total));
        if a >= b {
            return RowRanges::new();
        }
        // Both are within [0, total], so they fit in u64.
        RowRanges::from_ranges(std::iter::once(
            u64::try_from(a).unwrap_or(0)..u64::try_from(b).unwrap_or(0),
        ))
    }

    /// The global rows `e` keeps, when it only tests the row index.
    pub(crate) fn row_filter(&self, e: &Expr) -> Option<RowRanges> {
        let (name, _) = self.row_index.as_ref()?;
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And => Some(
                    self.row_filter(left)?
                        .intersection(&self.row_filter(right)?),
                ),
                Operator::Or => Some(self.row_filter(left)?.union(&self.row_filter(right)?)),
                _ => {
                    let (op, v) = if is_column(left, name) {
                        (*op, int_literal(right)?)
                    } else if is_column(right, name) {
                        (flip(*op)?, int_literal(left)?)
                    } else {
                        return None;
                    };
                    let (min, max) = (i128::MIN / 2, i128::MAX / 2);
                    Some(match op {
                        Operator::Eq => self.value_range(v, v + 1),
                        Operator::NotEq => self
                            .value_range(min, v)
                            .union(&self.value_range(v + 1, max)),
                        Operator::Lt => self.value_range(min, v),
                        Operator::LtEq => self.value_range(min, v + 1),
                        Operator::Gt => self.value_range(v + 1, max),
                        Operator::GtEq => self.value_range(v, max),
                        _ => return None,
                    })
                }
            },
            Expr::Between(Between {
                expr,
                negated,
                low,
                high,
            }) if is_column(expr, name) => {
                let inside = self.value_range(int_literal(low)?, int_literal(high)? + 1);
                Some(if *negated {
                    complement(&inside, self.total)
                } else {
                    inside
                })
            }
            Expr::InList(l) if !l.negated && is_column(&l.expr, name) => {
                let mut out = RowRanges::new();
                for v in &l.list {
                    let v = int_literal(v)?;
                    out = out.union(&self.value_range(v, v + 1));
                }
                Some(out)
            }
            Expr::Not(inner) => Some(complement(&self.row_filter(inner)?, self.total)),
            _ => None,
        }
    }

    /// Position bounds (a union of boxes) that every row `e` keeps lies in, when `e` only
    /// bounds components of the position column.
    pub(crate) fn box_filter(&self, e: &Expr) -> Option<Vec<Bounds>> {
        let position = self.position.as_deref()?;
        let out = match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And => {
                    let (a, b) = (self.box_filter(left), self.box_filter(right));
                    match (a, b) {
                        (Some(a), Some(b)) => intersect(&a, &b),
                        // One side alone still bounds the rows (a superset).
                        (Some(x), None) | (None, Some(x)) => x,
                        (None, None) => return None,
                    }
                }
                Operator::Or => {
                    let mut a = self.box_filter(left)?;
                    a.extend(self.box_filter(right)?);
                    a
                }
                _ => {
                    let (op, axis, v) = if let Some(axis) = axis_of(left, position) {
                        (*op, axis, float_literal(right)?)
                    } else if let Some(axis) = axis_of(right, position) {
                        (flip(*op)?, axis, float_literal(left)?)
                    } else {
                        return None;
                    };
                    if v.is_nan() {
                        return None;
                    }
                    let mut b = Bounds::default();
                    match op {
                        Operator::Eq => {
                            b.lo[axis] = v;
                            b.hi[axis] = v;
                        }
                        Operator::Lt | Operator::LtEq => b.hi[axis] = v,
                        Operator::Gt | Operator::GtEq => b.lo[axis] = v,
                        _ => return None,
                    }
                    vec![b]
                }
            },
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                let axis = axis_of(expr, position)?;
                let (lo, hi) = (float_literal(low)?, float_literal(high)?);
                if lo.is_nan() || hi.is_nan() {
                    return None;
                }
                let mut b = Bounds::default();
                b.lo[axis] = lo;
                b.hi[axis] = hi;
                vec![b]
            }
            _ => return None,
        };
        (out.len() <= MAX_BOXES).then_some(out)
    }
}

/// Rows of `0..total` not in `set`.
fn complement(set: &RowRanges, total: u64) -> RowRanges {
    let mut out = Vec::new();
    let mut at = 0;
    for r in set.iter() {
        if r.start > at {
            out.push(at..r.start.min(total));
        }
        at = at.max(r.end);
    }
    if at < total {
        out.push(at..total);
    }
    RowRanges::from_ranges(out)
}

/// The pairwise intersections of two unions of boxes (empty ones dropped).
pub(crate) fn intersect(a: &[Bounds], b: &[Bounds]) -> Vec<Bounds> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| x.intersect(y)))
        .filter(|x| !x.is_empty())
        .collect()
}
