//! Polars predicates, as `Expr.meta.serialize(format="json")` writes them (polars 2.1),
//! read into a small tree the scan planner understands.
//!
//! The JSON form is not stable across Polars versions, so the reader is defensive: every
//! node it does not recognise becomes [`Pred::Unknown`], which narrows nothing. The shapes
//! read (pinned by the unit tests below and by `python/tests/test_predicate_json.py`):
//!
//! * `{"BinaryExpr":{"left":L,"op":OP,"right":R}}` with `OP` one of `And Or LogicalAnd
//!   LogicalOr Lt LtEq Gt GtEq Eq EqValidity NotEq NotEqValidity`;
//! * `{"Column":"name"}`, possibly under `{"Cast":{"expr":..,"dtype":{"Literal":"Int64"}}}`
//!   (also `UInt64`, `Float64`: casts that keep the order of the values compared here);
//! * `{"Function":{"input":[{"Column":c},{"Literal":k}],"function":{"ArrayExpr":{"Get":_}}}}`:
//!   component `k` of an array column (`arr.get(k)`, `arr.first()`);
//! * `{"Function":{"input":[X,LO,HI],"function":{"Boolean":{"IsBetween":{"closed":C}}}}}`,
//!   `{"Function":{"input":[X,LIST],"function":{"Boolean":{"IsIn":{..}}}}}` and
//!   `{"Function":{"input":[X],"function":{"Boolean":"Not"}}}`;
//! * literals `{"Literal":{"Scalar":{"<Type>":v}}}` (integers, floats, booleans) and
//!   `{"Literal":{"Dyn":{"Int":v}}}` / `{"Dyn":{"Float":v}}` (before type coercion);
//! * `{"Literal":{"NumList":[v, ...]}}`: not Polars' own form but the one the Python layer
//!   writes in place of an `is_in` list (Polars serialises it as Arrow IPC bytes, which
//!   the Python side decodes with Polars itself).

use serde_json::Value;

/// A number from a literal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// An integer of any width.
    Int(i128),
    /// A floating-point number.
    Float(f64),
}

/// A comparison operator, written `operand <op> value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `==` (also Polars' null-aware `eq_missing`)
    Eq,
    /// `!=` (also `ne_missing`)
    NotEq,
}

/// Which ends of an `is_between` interval are included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// `[lo, hi]`
    Both,
    /// `[lo, hi)`
    Left,
    /// `(lo, hi]`
    Right,
    /// `(lo, hi)`
    None,
}

/// What a comparison tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A column (possibly under an order-keeping cast).
    Column(String),
    /// Component `axis` (0, 1 or 2) of a 3-wide array column.
    Component {
        /// The array column.
        column: String,
        /// The component.
        axis: usize,
    },
}

/// A predicate tree; anything not understood is [`Pred::Unknown`].
#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    /// Both hold.
    And(Box<Pred>, Box<Pred>),
    /// Either holds.
    Or(Box<Pred>, Box<Pred>),
    /// The inner predicate does not hold.
    Not(Box<Pred>),
    /// `x <op> v`.
    Cmp {
        /// Left-hand side.
        x: Operand,
        /// The operator.
        op: CmpOp,
        /// Right-hand side.
        v: Num,
    },
    /// `x.is_between(lo, hi, closed)`.
    Between {
        /// The value tested.
        x: Operand,
        /// Lower end.
        lo: Num,
        /// Upper end.
        hi: Num,
        /// Ends included.
        closed: Closed,
    },
    /// `x.is_in(values)`.
    IsIn {
        /// The value tested.
        x: Operand,
        /// The numbers listed (nulls left out: they match no row here).
        values: Vec<Num>,
    },
    /// A constant.
    Lit(bool),
    /// Anything else: no narrowing.
    Unknown,
}

impl CmpOp {
    fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "Lt" => Self::Lt,
            "LtEq" => Self::LtEq,
            "Gt" => Self::Gt,
            "GtEq" => Self::GtEq,
            "Eq" | "EqValidity" => Self::Eq,
            "NotEq" | "NotEqValidity" => Self::NotEq,
            _ => return None,
        })
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn flip(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::LtEq => Self::GtEq,
            Self::Gt => Self::Lt,
            Self::GtEq => Self::LtEq,
            other => other,
        }
    }
}

impl Num {
    /// The value as f64 (`None` for NaN, which no comparison matches).
    pub fn to_f64(self) -> Option<f64> {
        let v = match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        };
        (!v.is_nan()).then_some(v)
    }
}

/// Reads the JSON text of a serialised Polars expression; text that is not JSON is
/// [`Pred::Unknown`].
pub fn parse_json(text: &str) -> Pred {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => parse(&v),
        Err(_) => Pred::Unknown,
    }
}

/// The only key of a one-entry JSON object, with its value.
fn single(v: &Value) -> Option<(&str, &Value)> {
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// Reads a predicate node.
pub fn parse(v: &Value) -> Pred {
    parse_node(v).unwrap_or(Pred::Unknown)
}

fn parse_node(v: &Value) -> Option<Pred> {
    let (kind, body) = single(v)?;
    match kind {
        "BinaryExpr" => binary(body),
        "Function" => function(body),
        "Literal" => match literal(body)? {
            Lit::Bool(b) => Some(Pred::Lit(b)),
            _ => None,
        },
        _ => None,
    }
}

fn binary(body: &Value) -> Option<Pred> {
    let left = body.get("left")?;
    let right = body.get("right")?;
    let op = body.get("op")?.as_str()?;
    match op {
        "And" | "LogicalAnd" => Some(Pred::And(Box::new(parse(left)), Box::new(parse(right)))),
        "Or" | "LogicalOr" => Some(Pred::Or(Box::new(parse(left)), Box::new(parse(right)))),
        _ => {
            let op = CmpOp::parse(op)?;
            if let (Some(x), Some(v)) = (operand(left), number(right)) {
                Some(Pred::Cmp { x, op, v })
            } else if let (Some(v), Some(x)) = (number(left), operand(right)) {
                Some(Pred::Cmp {
                    x,
                    op: op.flip(),
                    v,
                })
            } else {
                None
            }
        }
    }
}

fn function(body: &Value) -> Option<Pred> {
    let input = body.get("input")?.as_array()?;
    let (kind, f) = single(body.get("function")?)?;
    if kind != "Boolean" {
        return None;
    }
    if f.as_str() == Some("Not") {
        return match input.as_slice() {
            [x] => Some(Pred::Not(Box::new(parse(x)))),
            _ => None,
        };
    }
    let (name, args) = single(f)?;
    match (name, input.as_slice()) {
        ("IsBetween", [x, lo, hi]) => {
            let closed = match args.get("closed")?.as_str()? {
                "Both" => Closed::Both,
                "Left" => Closed::Left,
                "Right" => Closed::Right,
                "None" => Closed::None,
                _ => return None,
            };
            Some(Pred::Between {
                x: operand(x)?,
                lo: number(lo)?,
                hi: number(hi)?,
                closed,
            })
        }
        ("IsIn", [x, list]) => {
            let (kind, body) = single(list)?;
            if kind != "Literal" {
                return None;
            }
            match literal(body)? {
                Lit::List(values) => Some(Pred::IsIn {
                    x: operand(x)?,
                    values,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A column, a cast of one that keeps the order, or a component of an array column.
fn operand(v: &Value) -> Option<Operand> {
    let (kind, body) = single(v)?;
    match kind {
        "Column" => Some(Operand::Column(body.as_str()?.to_owned())),
        "Cast" => {
            let dtype = body.get("dtype")?;
            let (k, t) = single(dtype)?;
            if k != "Literal" || !matches!(t.as_str()?, "Int64" | "UInt64" | "Float64") {
                return None;
            }
            operand(body.get("expr")?)
        }
        "Function" => {
            let (k, f) = single(body.get("function")?)?;
            if k != "ArrayExpr" || single(f)?.0 != "Get" {
                return None;
            }
            match body.get("input")?.as_array()?.as_slice() {
                [col, idx] => {
                    let (ck, name) = single(col)?;
                    if ck != "Column" {
                        return None;
                    }
                    // Negative indices count from the end of the 3 components.
                    let axis = match number(idx)? {
                        Num::Int(k @ 0..=2) => k,
                        Num::Int(k @ -3..=-1) => k + 3,
                        _ => return None,
                    };
                    Some(Operand::Component {
                        column: name.as_str()?.to_owned(),
                        axis: usize::try_from(axis).ok()?,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A literal's value.
enum Lit {
    Num(Num),
    Bool(bool),
    List(Vec<Num>),
}

/// A JSON number as [`Num`] (integers exactly, others as floats).
fn json_num(v: &Value) -> Option<Num> {
    if let Some(i) = v.as_i64() {
        Some(Num::Int(i128::from(i)))
    } else if let Some(u) = v.as_u64() {
        Some(Num::Int(i128::from(u)))
    } else {
        v.as_f64().map(Num::Float)
    }
}

/// The body of a `{"Literal": ...}` node.
fn literal(body: &Value) -> Option<Lit> {
    let (form, inner) = single(body)?;
    match form {
        "Dyn" => {
            let (k, v) = single(inner)?;
            match k {
                "Int" | "Float" => json_num(v).map(|n| match (k, n) {
                    ("Float", Num::Int(i)) => Lit::Num(Num::Float(i as f64)),
                    _ => Lit::Num(n),
                }),
                _ => None,
            }
        }
        "Scalar" => {
            let (k, v) = single(inner)?;
            match k {
                "Boolean" => v.as_bool().map(Lit::Bool),
                "Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" | "UInt64" => {
                    match json_num(v)? {
                        n @ Num::Int(_) => Some(Lit::Num(n)),
                        Num::Float(_) => None,
                    }
                }
                "Float32" | "Float64" => json_num(v).map(|n| {
                    Lit::Num(match n {
                        Num::Int(i) => Num::Float(i as f64),
                        f => f,
                    })
                }),
                _ => None,
            }
        }
        "NumList" => {
            let mut out = Vec::new();
            for item in inner.as_array()? {
                if item.is_null() {
                    continue;
                }
                out.push(json_num(item)?);
            }
            Some(Lit::List(out))
        }
        _ => None,
    }
}

/// A numeric literal, looking through casts that keep its value.
fn number(v: &Value) -> Option<Num> {
    let (kind, body) = single(v)?;
    match kind {
        "Literal" => match literal(body)? {
            Lit::Num(n) => Some(n),
            _ => None,
        },
        "Cast" => {
            let (k, t) = single(body.get("dtype")?)?;
            if k != "Literal" {
                return None;
            }
            let n = number(body.get("expr")?)?;
            let range = |lo: i128, hi: i128| match n {
                Num::Int(i) if (lo..=hi).contains(&i) => Some(n),
                _ => None,
            };
            match t.as_str()? {
                "Float64" => match n {
                    Num::Int(i) if i.abs() < (1i128 << 53) => Some(Num::Float(i as f64)),
                    Num::Float(_) => Some(n),
                    Num::Int(_) => None,
                },
                "Int64" => range(i128::from(i64::MIN), i128::from(i64::MAX)),
                "UInt64" => range(0, i128::from(u64::MAX)),
                "Int32" => range(i128::from(i32::MIN), i128::from(i32::MAX)),
                "UInt32" => range(0, i128::from(u32::MAX)),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> Operand {
        Operand::Column(name.to_owned())
    }

    // Each JSON text below is what polars 2.1.0 hands an IO source (after optimisation).

    #[test]
    fn row_index_range() {
        let p = parse_json(
            r#"{"BinaryExpr":{"left":{"BinaryExpr":{"left":{"Column":"row_index"},"op":"GtEq","right":{"Literal":{"Scalar":{"UInt64":10}}}}},"op":"And","right":{"BinaryExpr":{"left":{"Column":"row_index"},"op":"Lt","right":{"Literal":{"Scalar":{"UInt64":20}}}}}}}"#,
        );
        let expected = Pred::And(
            Box::new(Pred::Cmp {
                x: col("row_index"),
                op: CmpOp::GtEq,
                v: Num::Int(10),
            }),
            Box::new(Pred::Cmp {
                x: col("row_index"),
                op: CmpOp::Lt,
                v: Num::Int(20),
            }),
        );
        assert_eq!(p, expected);
    }

    #[test]
    fn array_component() {
        let p = parse_json(
            r#"{"BinaryExpr":{"left":{"Function":{"input":[{"Column":"Coordinates"},{"Literal":{"Dyn":{"Int":0}}}],"function":{"ArrayExpr":{"Get":false}}}},"op":"Lt","right":{"Literal":{"Scalar":{"Float64":5.0}}}}}"#,
        );
        let x = Operand::Component {
            column: "Coordinates".to_owned(),
            axis: 0,
        };
        assert_eq!(
            p,
            Pred::Cmp {
                x,
                op: CmpOp::Lt,
                v: Num::Float(5.0)
            }
        );
        // arr.get(-1, null_on_oob=True): the last component.
        let p = parse_json(
            r#"{"BinaryExpr":{"left":{"Function":{"input":[{"Column":"Coordinates"},{"Literal":{"Dyn":{"Int":-1}}}],"function":{"ArrayExpr":{"Get":true}}}},"op":"Lt","right":{"Literal":{"Scalar":{"Float64":5.0}}}}}"#,
        );
        assert!(matches!(
            p,
            Pred::Cmp {
                x: Operand::Component { axis: 2, .. },
                ..
            }
        ));
        // An index past the components is not one.
        let p = parse_json(
            r#"{"BinaryExpr":{"left":{"Function":{"input":[{"Column":"Coordinates"},{"Literal":{"Dyn":{"Int":3}}}],"function":{"ArrayExpr":{"Get":true}}}},"op":"Lt","right":{"Literal":{"Scalar":{"Float64":5.0}}}}}"#,
        );
        assert_eq!(p, Pred::Unknown);
    }

    #[test]
    fn between_cast_literal_left_and_not() {
        let p = parse_json(
            r#"{"Function":{"input":[{"Function":{"input":[{"Column":"Coordinates"},{"Literal":{"Dyn":{"Int":1}}}],"function":{"ArrayExpr":{"Get":false}}}},{"Literal":{"Scalar":{"Float64":1.0}}},{"Literal":{"Scalar":{"Float64":2.0}}}],"function":{"Boolean":{"IsBetween":{"closed":"Both"}}}}}"#,
        );
        assert_eq!(
            p,
            Pred::Between {
                x: Operand::Component {
                    column: "Coordinates".to_owned(),
                    axis: 1
                },
                lo: Num::Float(1.0),
                hi: Num::Float(2.0),
                closed: Closed::Both
            }
        );
        let p = parse_json(
            r#"{"BinaryExpr":{"left":{"Cast":{"expr":{"Column":"row_index"},"dtype":{"Literal":"Float64"},"options":"NonStrict"}},"op":"Lt","right":{"Literal":{"Scalar":{"Float64":20.5}}}}}"#,
        );
        assert_eq!(
            p,
            Pred::Cmp {
                x: col("row_index"),
                op: CmpOp::Lt,
                v: Num::Float(20.5)
            }
        );
        // A cast that may reorder values (to Int8) is not looked through.
        let p = parse_json(
            r#"{"BinaryExpr":{"left":{"Cast":{"expr":{"Column":"row_index"},"dtype":{"Literal":"Int8"},"options":"Strict"}},"op":"Gt","right":{"Literal":{"Scalar":{"Int8":5}}}}}"#,
        );
        assert_eq!(p, Pred::Unknown);
        // Literal on the left: the operator flips.
        let p = parse_json(
            r#"{"BinaryExpr":{"left":{"Literal":{"Dyn":{"Int":5}}},"op":"Gt","right":{"Column":"row_index"}}}"#,
        );
        assert_eq!(
            p,
            Pred::Cmp {
                x: col("row_index"),
                op: CmpOp::Lt,
                v: Num::Int(5)
            }
        );
        let p = parse_json(
            r#"{"Function":{"input":[{"Function":{"input":[{"Column":"row_index"},{"Literal":{"NumList":[3,8,null]}}],"function":{"Boolean":{"IsIn":{"nulls_equal":false}}}}}],"function":{"Boolean":"Not"}}}"#,
        );
        assert_eq!(
            p,
            Pred::Not(Box::new(Pred::IsIn {
                x: col("row_index"),
                values: vec![Num::Int(3), Num::Int(8)]
            }))
        );
    }

    #[test]
    fn unknown_shapes_do_not_narrow() {
        for text in [
            "not json",
            "{}",
            r#"{"Ternary":{"predicate":{"Function":{"input":[{"Column":"row_index"}],"function":{"Boolean":"IsNotNull"}}},"truthy":{"Literal":{"Scalar":{"Boolean":true}}},"falsy":{"Literal":{"Scalar":{"Null":"Boolean"}}}}}"#,
            r#"{"Function":{"input":[{"Column":"Masses"}],"function":{"Boolean":"IsNull"}}}"#,
            r#"{"BinaryExpr":{"left":{"Column":"a"},"op":"Plus","right":{"Literal":{"Scalar":{"UInt64":1}}}}}"#,
            r#"{"BinaryExpr":{"left":{"Column":"a"},"op":"Lt","right":{"Column":"b"}}}"#,
            // Polars' own is_in list (IPC bytes) is left to the Python layer to decode.
            r#"{"Function":{"input":[{"Column":"row_index"},{"Literal":{"Scalar":{"List":[255,255]}}}],"function":{"Boolean":{"IsIn":{"nulls_equal":false}}}}}"#,
            r#"{"BinaryExpr":{"left":{"Column":"a"},"op":"Lt","right":{"Literal":{"Scalar":{"Null":"Float64"}}}}}"#,
        ] {
            assert_eq!(parse_json(text), Pred::Unknown, "{text}");
        }
        // An unknown conjunct keeps the other one.
        let p = parse_json(
            r#"{"BinaryExpr":{"left":{"Column":"flag"},"op":"And","right":{"Literal":{"Scalar":{"Boolean":false}}}}}"#,
        );
        assert_eq!(
            p,
            Pred::And(Box::new(Pred::Unknown), Box::new(Pred::Lit(false)))
        );
    }
}
