//! Named arguments of `read_hdfstream`: `read_hdfstream('url', 'PartType0', region =>
//! '...')`. DataFusion's planner only passes positional arguments to table functions, so
//! this relation planner rewrites a call's named arguments into the positional
//! `'key=value'` strings the function takes, before the default planning runs.

use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::planner::{
    RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, TableFactor, UnaryOperator, Value, ValueWithSpan,
};

/// Rewrites `read_hdfstream(..., key => value)` into `read_hdfstream(..., 'key=value')`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NamedArguments;

impl RelationPlanner for NamedArguments {
    fn plan_relation(
        &self,
        relation: TableFactor,
        _context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let mut relation = relation;
        if let TableFactor::Table {
            name,
            args: Some(call),
            ..
        } = &mut relation
            && name
                .0
                .last()
                .and_then(|part| part.as_ident())
                .is_some_and(|id| id.value.eq_ignore_ascii_case(crate::TABLE_FUNCTION))
            && call
                .args
                .iter()
                .any(|a| !matches!(a, FunctionArg::Unnamed(_)))
        {
            call.args = positional(std::mem::take(&mut call.args))?;
        }
        Ok(RelationPlanning::Original(Box::new(relation)))
    }
}

/// The call's arguments with the URL and group first, then each option as `'key=value'`.
fn positional(args: Vec<FunctionArg>) -> Result<Vec<FunctionArg>> {
    let mut url = None;
    let mut group = None;
    let mut plain = Vec::new();
    let mut options = Vec::new();
    for arg in args {
        let (key, value) = match arg {
            FunctionArg::Unnamed(e) => {
                plain.push(FunctionArg::Unnamed(e));
                continue;
            }
            FunctionArg::Named { name, arg, .. } => (name.value, arg),
            FunctionArg::ExprNamed { name, arg, .. } => match name {
                SqlExpr::Identifier(id) => (id.value, arg),
                other => {
                    return plan_err!(
                        "{}: an argument name must be a word, not `{other}`",
                        crate::TABLE_FUNCTION
                    );
                }
            },
        };
        let key = key.to_ascii_lowercase();
        let text = literal_text(&key, &value)?;
        match key.as_str() {
            "url" => url = Some(text),
            "group" => group = Some(text),
            _ => options.push(string(format!("{key}={text}"))),
        }
    }
    let mut out = Vec::with_capacity(plain.len() + options.len() + 2);
    let mut plain = plain.into_iter();
    for (name, named) in [("url", url), ("group", group)] {
        match named {
            Some(text) => out.push(string(text)),
            None => match plain.next() {
                Some(arg) => out.push(arg),
                None => {
                    return plan_err!(
                        "{}: the {name} is missing (give it first, or as `{name} => '...'`)",
                        crate::TABLE_FUNCTION
                    );
                }
            },
        }
    }
    out.extend(plain);
    out.extend(options);
    Ok(out)
}

/// The text of a named argument's value: a string, a number (signed) or a boolean literal.
fn literal_text(key: &str, value: &FunctionArgExpr) -> Result<String> {
    let FunctionArgExpr::Expr(e) = value else {
        return plan_err!("{}: `{key}` needs a value", crate::TABLE_FUNCTION);
    };
    let text = match e {
        SqlExpr::Value(ValueWithSpan { value: v, .. }) => value_text(v),
        SqlExpr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            SqlExpr::Value(ValueWithSpan {
                value: Value::Number(n, _),
                ..
            }) => Some(format!("-{n}")),
            _ => None,
        },
        _ => None,
    };
    match text {
        Some(t) => Ok(t),
        None => plan_err!(
            "{}: `{key}` must be a string, number or boolean literal, not `{e}`",
            crate::TABLE_FUNCTION
        ),
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::SingleQuotedString(s)
        | Value::DoubleQuotedString(s)
        | Value::EscapedStringLiteral(s)
        | Value::DollarQuotedString(datafusion::sql::sqlparser::ast::DollarQuotedString {
            value: s,
            ..
        }) => Some(s.clone()),
        Value::Number(n, _) => Some(n.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string(text: String) -> FunctionArg {
    FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::value(
        Value::SingleQuotedString(text),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewrite(sql: &str) -> Result<String> {
        let stmt = Parser::parse_sql(&GenericDialect {}, sql)
            .map_err(|e| datafusion::common::DataFusionError::Plan(e.to_string()))?
            .remove(0);
        let datafusion::sql::sqlparser::ast::Statement::Query(q) = stmt else {
            unreachable!("the tests only parse queries")
        };
        let datafusion::sql::sqlparser::ast::SetExpr::Select(s) = *q.body else {
            unreachable!("the tests only parse selects")
        };
        let TableFactor::Table {
            args: Some(call), ..
        } = s.from[0].relation.clone()
        else {
            unreachable!("the tests call a table function")
        };
        let args = positional(call.args)?;
        Ok(args
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "))
    }

    #[test]
    fn named_arguments_become_key_value_strings() {
        assert_eq!(
            rewrite(
                "SELECT * FROM read_hdfstream('u', 'PartType0', region => '0,1;0,1;0,1', \
                 cell_padding => 0.5, region_exact => true, batch_size => 100)"
            )
            .unwrap(),
            "'u', 'PartType0', 'region=0,1;0,1;0,1', 'cell_padding=0.5', \
             'region_exact=true', 'batch_size=100'"
        );
        assert_eq!(
            rewrite("SELECT * FROM read_hdfstream(group => 'g', url => 'u', 'columns=a')").unwrap(),
            "'u', 'g', 'columns=a'"
        );
        assert_eq!(
            rewrite("SELECT * FROM read_hdfstream('u', group => 'g', row_index_offset => -3)")
                .unwrap(),
            "'u', 'g', 'row_index_offset=-3'"
        );
    }

    #[test]
    fn bad_named_arguments_are_plan_errors() {
        let e = rewrite("SELECT * FROM read_hdfstream(url => 'u')").unwrap_err();
        assert!(e.to_string().contains("the group is missing"), "{e}");
        let e = rewrite("SELECT * FROM read_hdfstream('u', 'g', region => 1 + 2)").unwrap_err();
        assert!(
            e.to_string()
                .contains("must be a string, number or boolean"),
            "{e}"
        );
    }
}
