//! SQL entry points: the `read_hdfstream` table function and the `HDFSTREAM` external-table
//! factory.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{
    Session, TableFunctionArgs, TableFunctionImpl, TableProvider, TableProviderFactory,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{CreateExternalTable, Expr};

use crate::{HdfstreamError, HdfstreamOptions, HdfstreamTable};

/// `read_hdfstream('url', 'group' [, key => value ...])`: a remote group as a table. The
/// URL is `http(s)://host/base/msgpack/<file or glob>` or `alias:<file or glob>`, or, with
/// a default server, a bare file path or glob on it; options are those of
/// [`HdfstreamOptions::set`], as named arguments (`region => '0,10;0,10;0,10'`, which
/// [`register`](crate::register) enables) or as `'key=value'` strings.
#[derive(Debug, Default, Clone)]
pub struct ReadHdfstream {
    server: Option<String>,
    options: HdfstreamOptions,
}

impl ReadHdfstream {
    /// Resolves bare file paths (no scheme, no alias) on `server` (a base URL or an alias).
    /// Default: none (every URL must name its server).
    pub fn with_server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    /// Options every table starts from (the call's `key=value` arguments override them).
    /// Default: [`HdfstreamOptions::default`].
    pub fn with_options(mut self, options: HdfstreamOptions) -> Self {
        self.options = options;
        self
    }

    /// The full URL of `url` (a bare path is resolved on the default server).
    fn resolve(&self, url: &str) -> String {
        let bare =
            !url.starts_with("http://") && !url.starts_with("https://") && !url.contains(':');
        match &self.server {
            Some(server) if bare => {
                let path = url.trim_start_matches('/');
                if server.starts_with("http://") || server.starts_with("https://") {
                    format!("{}/msgpack/{path}", server.trim_end_matches('/'))
                } else {
                    format!("{server}:{path}")
                }
            }
            _ => url.to_owned(),
        }
    }
}

fn string_arg(e: &Expr, what: &str) -> crate::Result<String> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _)
        | Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _)
        | Expr::Literal(ScalarValue::Utf8View(Some(s)), _) => Ok(s.clone()),
        other => Err(HdfstreamError::Usage(format!(
            "{}: the {what} must be a string literal, not {other}",
            crate::TABLE_FUNCTION
        ))),
    }
}

impl TableFunctionImpl for ReadHdfstream {
    fn call_with_args(&self, args: TableFunctionArgs<'_, '_>) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let usage = || {
            HdfstreamError::Usage(format!(
                "usage: {}('url', 'group' [, key => value ...])",
                crate::TABLE_FUNCTION
            ))
        };
        let (url, group) = match exprs {
            [url, group, ..] => (string_arg(url, "URL")?, string_arg(group, "group")?),
            _ => return Err(usage().into()),
        };
        let url = self.resolve(&url);
        let mut options = self.options.clone();
        for e in exprs.iter().skip(2) {
            let kv = string_arg(e, "option")?;
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                HdfstreamError::Usage(format!("option `{kv}` is not of the form key=value"))
            })?;
            options = options.set(k.trim(), v.trim())?;
        }
        Ok(Arc::new(HdfstreamTable::open(&url, &group, options)?))
    }
}

/// Makes tables for `CREATE EXTERNAL TABLE t STORED AS HDFSTREAM LOCATION 'url' OPTIONS
/// ('group' 'PartType0', ...)`; the other options are those of [`HdfstreamOptions::set`].
#[derive(Debug, Default, Clone, Copy)]
pub struct HdfstreamTableFactory;

#[async_trait]
impl TableProviderFactory for HdfstreamTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let url = match cmd.locations.as_slice() {
            [one] => one.clone(),
            other => {
                return Err(HdfstreamError::Usage(format!(
                    "an HDFSTREAM table needs one LOCATION (a URL), not {}",
                    other.len()
                ))
                .into());
            }
        };
        let mut group = None;
        let mut options = HdfstreamOptions::default();
        let mut keys: Vec<&String> = cmd.options.keys().collect();
        keys.sort();
        for k in keys {
            let v = cmd.options.get(k).map(String::as_str).unwrap_or_default();
            // DataFusion may qualify format options as `format.<key>`.
            let key = k.strip_prefix("format.").unwrap_or(k);
            if key.eq_ignore_ascii_case("group") {
                group = Some(v.to_owned());
            } else {
                options = options.set(key, v)?;
            }
        }
        let group = group.ok_or_else(|| {
            HdfstreamError::Usage(
                "an HDFSTREAM table needs OPTIONS ('group' '<group path>')".into(),
            )
        })?;
        Ok(Arc::new(HdfstreamTable::open(&url, &group, options)?))
    }
}
