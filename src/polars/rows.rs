//! Turning the row-index part of a predicate into row ranges.
//!
//! The analysis returns a *superset* of the matching rows plus a flag saying whether it is
//! exact. Anything it does not understand selects every row (inexact), so the scan stays
//! correct by evaluating the whole predicate on the fetched rows whenever the set is inexact.

use polars::prelude::*;
use polars_plan::plans::DynLiteralValue;

use crate::selection::RowRanges;

/// Rows a predicate may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowSet {
    /// Superset of the matching rows (row numbers from 0, offset removed).
    pub(crate) ranges: RowRanges,
    /// True when exactly these rows match (the predicate needs no evaluation).
    pub(crate) exact: bool,
}

/// A literal number.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

/// What the analysis knows about the virtual row index.
pub(crate) struct IndexInfo<'a> {
    /// Column name.
    pub(crate) name: &'a str,
    /// Value of row 0.
    pub(crate) offset: u64,
    /// Number of rows.
    pub(crate) total: u64,
}

impl IndexInfo<'_> {
    fn all(&self) -> RowRanges {
        RowRanges::from_ranges(std::iter::once(0..self.total))
    }

    fn unknown(&self) -> RowSet {
        RowSet {
            ranges: self.all(),
            exact: false,
        }
    }

    fn exact(&self, ranges: RowRanges) -> RowSet {
        RowSet {
            ranges,
            exact: true,
        }
    }

    /// Rows whose index value lies in `[lo, hi)` (index space, may be out of range).
    fn between(&self, lo: i128, hi: i128) -> RowRanges {
        let off = i128::from(self.offset);
        let total = i128::from(self.total);
        let lo = lo.saturating_sub(off).clamp(0, total);
        let hi = hi.saturating_sub(off).clamp(0, total);
        if lo >= hi {
            return RowRanges::new();
        }
        // Both are within 0..=total, which came from a u64.
        RowRanges::from_ranges(std::iter::once(
            u64::try_from(lo).unwrap_or(0)..u64::try_from(hi).unwrap_or(0),
        ))
    }

    fn complement(&self, r: &RowRanges) -> RowRanges {
        let mut out = Vec::with_capacity(r.run_count() + 1);
        let mut at = 0u64;
        for run in r {
            if run.start > at {
                out.push(at..run.start);
            }
            at = run.end;
        }
        if at < self.total {
            out.push(at..self.total);
        }
        RowRanges::from_ranges(out)
    }

    /// Whether `e` is the row index (possibly cast to a type that keeps every value).
    fn is_index(&self, e: &Expr) -> bool {
        match e {
            Expr::Column(n) => n.as_str() == self.name,
            Expr::Cast {
                expr,
                dtype: DataTypeExpr::Literal(dt),
                ..
            } => {
                matches!(dt, DataType::Int64 | DataType::UInt64 | DataType::Float64)
                    && self.is_index(expr)
            }
            _ => false,
        }
    }

    /// Rows where `index <op> v` holds.
    fn compare(&self, op: Operator, v: Num) -> Option<RowRanges> {
        const MAX: i128 = i128::MAX / 4;
        let to_i = |f: f64| -> Option<i128> {
            if f.is_nan() {
                None
            } else {
                Some((f.clamp(-1e30, 1e30)) as i128)
            }
        };
        let (lo, hi) = match (op, v) {
            (Operator::Lt, Num::Int(v)) => (i128::MIN / 4, v),
            (Operator::Lt, Num::Float(f)) => (i128::MIN / 4, to_i(f.ceil())?),
            (Operator::LtEq, Num::Int(v)) => (i128::MIN / 4, v.saturating_add(1)),
            (Operator::LtEq, Num::Float(f)) => (i128::MIN / 4, to_i(f.floor())?.saturating_add(1)),
            (Operator::Gt, Num::Int(v)) => (v.saturating_add(1), MAX),
            (Operator::Gt, Num::Float(f)) => (to_i(f.floor())?.saturating_add(1), MAX),
            (Operator::GtEq, Num::Int(v)) => (v, MAX),
            (Operator::GtEq, Num::Float(f)) => (to_i(f.ceil())?, MAX),
            (Operator::Eq | Operator::EqValidity, Num::Int(v)) => (v, v.saturating_add(1)),
            (Operator::Eq | Operator::EqValidity, Num::Float(f)) => {
                if f.fract() == 0.0 {
                    let v = to_i(f)?;
                    (v, v.saturating_add(1))
                } else {
                    (0, 0)
                }
            }
            (Operator::NotEq | Operator::NotEqValidity, v) => {
                let eq = self.compare(Operator::Eq, v)?;
                return Some(self.complement(&eq));
            }
            _ => return None,
        };
        Some(self.between(lo, hi))
    }

    /// Analyses a predicate.
    pub(crate) fn analyze(&self, e: &Expr) -> RowSet {
        match e {
            Expr::Alias(inner, _) => self.analyze(inner),
            Expr::Literal(lv) => match literal_bool(lv) {
                Some(true) => self.exact(self.all()),
                Some(false) => self.exact(RowRanges::new()),
                None => self.unknown(),
            },
            Expr::BinaryExpr { left, op, right } => self.binary(left, *op, right),
            Expr::Function { input, function } => self.function(input, function),
            _ => self.unknown(),
        }
    }

    fn binary(&self, left: &Expr, op: Operator, right: &Expr) -> RowSet {
        match op {
            Operator::And | Operator::LogicalAnd => {
                let (a, b) = (self.analyze(left), self.analyze(right));
                RowSet {
                    ranges: a.ranges.intersection(&b.ranges),
                    exact: a.exact && b.exact,
                }
            }
            Operator::Or | Operator::LogicalOr => {
                let (a, b) = (self.analyze(left), self.analyze(right));
                if a.exact && b.exact {
                    self.exact(a.ranges.union(&b.ranges))
                } else {
                    // An inexact side may match rows outside its set only if it is inexact in
                    // the "superset" sense, which it is, so the union stays a superset.
                    RowSet {
                        ranges: a.ranges.union(&b.ranges),
                        exact: false,
                    }
                }
            }
            _ => {
                let found = if self.is_index(left) {
                    literal_num(right).and_then(|v| self.compare(op, v))
                } else if self.is_index(right) {
                    literal_num(left).and_then(|v| self.compare(flip(op)?, v))
                } else {
                    None
                };
                match found {
                    Some(r) => self.exact(r),
                    None => self.unknown(),
                }
            }
        }
    }

    fn function(&self, input: &[Expr], function: &FunctionExpr) -> RowSet {
        let FunctionExpr::Boolean(f) = function else {
            return self.unknown();
        };
        match (f, input) {
            (BooleanFunction::Not, [x]) => {
                let a = self.analyze(x);
                if a.exact {
                    self.exact(self.complement(&a.ranges))
                } else {
                    self.unknown()
                }
            }
            (BooleanFunction::IsBetween { closed }, [x, lo, hi]) if self.is_index(x) => {
                let (lo_op, hi_op) = match closed {
                    ClosedInterval::Both => (Operator::GtEq, Operator::LtEq),
                    ClosedInterval::Left => (Operator::GtEq, Operator::Lt),
                    ClosedInterval::Right => (Operator::Gt, Operator::LtEq),
                    ClosedInterval::None => (Operator::Gt, Operator::Lt),
                };
                let a = literal_num(lo).and_then(|v| self.compare(lo_op, v));
                let b = literal_num(hi).and_then(|v| self.compare(hi_op, v));
                match (a, b) {
                    (Some(a), Some(b)) => self.exact(a.intersection(&b)),
                    _ => self.unknown(),
                }
            }
            (BooleanFunction::IsIn { .. }, [x, other]) if self.is_index(x) => {
                match literal_list(other) {
                    Some(values) => {
                        let off = i128::from(self.offset);
                        let total = i128::from(self.total);
                        let rows = values.into_iter().filter_map(|v| {
                            let i = match v {
                                Num::Int(i) => i,
                                Num::Float(f) if f.fract() == 0.0 && f.abs() < 1e30 => f as i128,
                                Num::Float(_) => return None,
                            };
                            let r = i.checked_sub(off)?;
                            (0..total)
                                .contains(&r)
                                .then(|| u64::try_from(r).ok())
                                .flatten()
                        });
                        self.exact(RowRanges::from_rows(rows))
                    }
                    None => self.unknown(),
                }
            }
            _ => self.unknown(),
        }
    }
}

/// `a op b` == `b flip(op) a`.
pub(crate) fn flip(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        Operator::Eq | Operator::EqValidity | Operator::NotEq | Operator::NotEqValidity => op,
        _ => return None,
    })
}

fn any_num(av: &AnyValue<'_>) -> Option<Num> {
    match av {
        AnyValue::Float32(f) => Some(Num::Float(f64::from(*f))),
        AnyValue::Float64(f) => Some(Num::Float(*f)),
        AnyValue::Int8(v) => Some(Num::Int(i128::from(*v))),
        AnyValue::Int16(v) => Some(Num::Int(i128::from(*v))),
        AnyValue::Int32(v) => Some(Num::Int(i128::from(*v))),
        AnyValue::Int64(v) => Some(Num::Int(i128::from(*v))),
        AnyValue::UInt8(v) => Some(Num::Int(i128::from(*v))),
        AnyValue::UInt16(v) => Some(Num::Int(i128::from(*v))),
        AnyValue::UInt32(v) => Some(Num::Int(i128::from(*v))),
        AnyValue::UInt64(v) => Some(Num::Int(i128::from(*v))),
        _ => None,
    }
}

fn literal_bool(lv: &LiteralValue) -> Option<bool> {
    match lv {
        LiteralValue::Scalar(s) => match s.value() {
            AnyValue::Boolean(b) => Some(*b),
            _ => None,
        },
        _ => None,
    }
}

/// The number a literal expression stands for (casts that keep the value are looked through).
pub(crate) fn literal_num(e: &Expr) -> Option<Num> {
    match e {
        Expr::Alias(inner, _) => literal_num(inner),
        Expr::Literal(LiteralValue::Dyn(DynLiteralValue::Int(i))) => Some(Num::Int(*i)),
        Expr::Literal(LiteralValue::Dyn(DynLiteralValue::Float(f))) => Some(Num::Float(*f)),
        Expr::Literal(LiteralValue::Scalar(s)) => any_num(s.value()),
        Expr::Cast {
            expr,
            dtype: DataTypeExpr::Literal(dt),
            ..
        } => match (literal_num(expr)?, dt) {
            (Num::Int(i), dt) if dt.is_integer() => {
                // Only casts that keep the value: check the range of the target type.
                let (lo, hi) = int_range(dt)?;
                (lo..=hi).contains(&i).then_some(Num::Int(i))
            }
            (Num::Int(i), DataType::Float64) if i.abs() < (1i128 << 53) => Some(Num::Int(i)),
            (Num::Float(f), DataType::Float64) => Some(Num::Float(f)),
            _ => None,
        },
        _ => None,
    }
}

fn int_range(dt: &DataType) -> Option<(i128, i128)> {
    Some(match dt {
        DataType::Int8 => (i128::from(i8::MIN), i128::from(i8::MAX)),
        DataType::Int16 => (i128::from(i16::MIN), i128::from(i16::MAX)),
        DataType::Int32 => (i128::from(i32::MIN), i128::from(i32::MAX)),
        DataType::Int64 => (i128::from(i64::MIN), i128::from(i64::MAX)),
        DataType::UInt8 => (0, i128::from(u8::MAX)),
        DataType::UInt16 => (0, i128::from(u16::MAX)),
        DataType::UInt32 => (0, i128::from(u32::MAX)),
        DataType::UInt64 => (0, i128::from(u64::MAX)),
        _ => return None,
    })
}

/// The numbers of a list literal (`is_in` right-hand side).
fn literal_list(e: &Expr) -> Option<Vec<Num>> {
    let series = match e {
        Expr::Alias(inner, _) => return literal_list(inner),
        Expr::Agg(AggExpr::Implode { input, .. }) => return literal_list(input),
        Expr::Literal(LiteralValue::Series(s)) => (**s).clone(),
        Expr::Literal(LiteralValue::Scalar(sc)) => match sc.value() {
            AnyValue::List(s) => s.clone(),
            AnyValue::Array(s, _) => s.clone(),
            _ => return None,
        },
        _ => return None,
    };
    series_nums(&series)
}

fn series_nums(s: &Series) -> Option<Vec<Num>> {
    match s.dtype() {
        DataType::List(_) => {
            let ca = s.list().ok()?;
            let mut out = Vec::new();
            for inner in ca.series_iter().flatten() {
                out.extend(series_nums(&inner)?);
            }
            Some(out)
        }
        DataType::UInt64 => Some(
            s.u64()
                .ok()?
                .iter()
                .flatten()
                .map(|v| Num::Int(i128::from(v)))
                .collect(),
        ),
        DataType::Float32 | DataType::Float64 => Some(
            s.cast(&DataType::Float64)
                .ok()?
                .f64()
                .ok()?
                .iter()
                .flatten()
                .map(Num::Float)
                .collect(),
        ),
        dt if dt.is_integer() => Some(
            s.cast(&DataType::Int64)
                .ok()?
                .i64()
                .ok()?
                .iter()
                .flatten()
                .map(|v| Num::Int(i128::from(v)))
                .collect(),
        ),
        _ => None,
    }
}
