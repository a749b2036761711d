//! Turning range conditions on the position column in a predicate into position bounds,
//! which the table core turns into the rows of the SWIFT cells they touch.
//!
//! Like the row-index analysis, this only ever widens: the bounds always hold for every
//! matching row, and the whole predicate is evaluated on the fetched rows afterwards.

use polars::prelude::*;
use polars_plan::dsl::function_expr::ArrayFunction;

use super::rows::{Num, flip, literal_num};
use crate::table::Bounds;

/// Most boxes an `|` of position conditions may expand into before the analysis gives up.
const MAX_BOXES: usize = 64;

/// What the analysis needs to recognise position components.
pub(crate) struct PositionInfo<'a> {
    /// The `(N, 3)` position dataset's column name (`Array` form).
    pub(crate) name: &'a str,
    /// Whether the table splits it into `<name>_0`, `<name>_1`, `<name>_2`.
    pub(crate) split: bool,
}

/// A literal as a bound (`None` for NaN, which no comparison matches anyway).
fn num_f64(n: Num) -> Option<f64> {
    let v = match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    };
    (!v.is_nan()).then_some(v)
}

impl PositionInfo<'_> {
    /// The axis a component expression reads, if it is one.
    fn axis(&self, e: &Expr) -> Option<usize> {
        match e {
            Expr::Alias(inner, _) => self.axis(inner),
            Expr::Cast {
                expr,
                dtype: DataTypeExpr::Literal(DataType::Float64),
                ..
            } => self.axis(expr),
            Expr::Column(n) if self.split => {
                let k = n.as_str().strip_prefix(self.name)?.strip_prefix('_')?;
                let k: usize = k.parse().ok()?;
                (k < 3).then_some(k)
            }
            Expr::Function {
                input,
                function: FunctionExpr::ArrayExpr(ArrayFunction::Get(_)),
            } if !self.split => match input.as_slice() {
                [Expr::Column(n), idx] if n.as_str() == self.name => match literal_num(idx)? {
                    Num::Int(k) if (0..3).contains(&k) => usize::try_from(k).ok(),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// Bounds of one comparison `component op value`.
    fn compare(axis: usize, op: Operator, v: f64) -> Option<Bounds> {
        let mut b = Bounds::default();
        match op {
            Operator::Lt | Operator::LtEq => b.hi[axis] = v,
            Operator::Gt | Operator::GtEq => b.lo[axis] = v,
            Operator::Eq | Operator::EqValidity => {
                b.lo[axis] = v;
                b.hi[axis] = v;
            }
            _ => return None,
        }
        Some(b)
    }

    /// The union of boxes every row matching `e` lies in; `None` when `e` does not
    /// constrain the positions (as far as the analysis can tell).
    pub(crate) fn bounds(&self, e: &Expr) -> Option<Vec<Bounds>> {
        match e {
            Expr::Alias(inner, _) => self.bounds(inner),
            Expr::BinaryExpr { left, op, right } => match op {
                Operator::And | Operator::LogicalAnd => {
                    match (self.bounds(left), self.bounds(right)) {
                        (Some(a), Some(b)) => {
                            if a.len().saturating_mul(b.len()) > MAX_BOXES {
                                return None;
                            }
                            let out: Vec<Bounds> = a
                                .iter()
                                .flat_map(|x| b.iter().map(|y| x.intersect(y)))
                                .filter(|x| !x.is_empty())
                                .collect();
                            Some(out)
                        }
                        (Some(a), None) | (None, Some(a)) => Some(a),
                        (None, None) => None,
                    }
                }
                Operator::Or | Operator::LogicalOr => {
                    let (mut a, b) = (self.bounds(left)?, self.bounds(right)?);
                    a.extend(b);
                    (a.len() <= MAX_BOXES).then_some(a)
                }
                _ => {
                    let (axis, op, v) = if let Some(axis) = self.axis(left) {
                        (axis, *op, literal_num(right)?)
                    } else {
                        (self.axis(right)?, flip(*op)?, literal_num(left)?)
                    };
                    let b = Self::compare(axis, op, num_f64(v)?)?;
                    Some(if b.is_empty() { Vec::new() } else { vec![b] })
                }
            },
            Expr::Function {
                input,
                function: FunctionExpr::Boolean(BooleanFunction::IsBetween { .. }),
            } => match input.as_slice() {
                [x, lo, hi] => {
                    let axis = self.axis(x)?;
                    let mut b = Bounds::default();
                    b.lo[axis] = num_f64(literal_num(lo)?)?;
                    b.hi[axis] = num_f64(literal_num(hi)?)?;
                    Some(if b.is_empty() { Vec::new() } else { vec![b] })
                }
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(k: i32) -> Expr {
        col("Coordinates").arr().get(lit(k), false)
    }

    #[test]
    fn array_component_boxes() {
        let info = PositionInfo {
            name: "Coordinates",
            split: false,
        };
        let e = x(0)
            .gt_eq(lit(1.0))
            .and(x(0).lt(lit(2.0)))
            .and(x(1).is_between(lit(3.0), lit(4.0), ClosedInterval::Both))
            .and(col("Masses").gt(lit(0.5)))
            .and(lit(9.0).gt(x(2)));
        let b = info.bounds(&e).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].lo, [1.0, 3.0, f64::NEG_INFINITY]);
        assert_eq!(b[0].hi, [2.0, 4.0, 9.0]);
        // Or of boxes: a union; Or with something else: no constraint.
        let u = x(0).lt(lit(1.0)).or(x(0).gt(lit(5.0)));
        assert_eq!(info.bounds(&u).unwrap().len(), 2);
        assert!(
            info.bounds(&x(0).lt(lit(1.0)).or(col("Masses").gt(lit(1.0))))
                .is_none()
        );
        // Contradictions select nothing; other columns nothing known.
        assert!(
            info.bounds(&x(0).lt(lit(1.0)).and(x(0).gt(lit(2.0))))
                .unwrap()
                .is_empty()
        );
        assert!(info.bounds(&col("Masses").gt(lit(1.0))).is_none());
        assert!(info.bounds(&x(5).gt(lit(1.0))).is_none());
        assert!(info.bounds(&x(0).neq(lit(1.0))).is_none());
    }

    #[test]
    fn split_components() {
        let info = PositionInfo {
            name: "Coordinates",
            split: true,
        };
        let e = col("Coordinates_2")
            .lt(lit(3))
            .and(col("Coordinates_0").gt(lit(1.5)));
        let b = info.bounds(&e).unwrap();
        assert_eq!(b[0].lo[0], 1.5);
        assert_eq!(b[0].hi[2], 3.0);
        assert!(info.bounds(&col("Coordinates_3").lt(lit(3))).is_none());
    }
}
