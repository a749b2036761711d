//! Late materialization: when a scan filters on some columns, it may fetch those first and
//! the other columns only for the rows that pass. These say when that moves fewer bytes.

use hdfstream_protocol::{DatasetInfo, Dtype};

/// Request bytes one run of a multi-slice request costs (its start and count).
pub const RUN_COST_BYTES: u64 = 16;

/// Wire bytes guessed for one variable-length string.
pub const VLEN_STRING_BYTES: u64 = 16;

/// Wire bytes one row of a dataset costs: the element size times the values per row
/// (variable-length elements count [`VLEN_STRING_BYTES`] each).
pub fn row_bytes(info: &DatasetInfo) -> u64 {
    let element = match &info.dtype {
        Dtype::VlenString | Dtype::Vlen(_) => VLEN_STRING_BYTES,
        d => d.item_size().map_or(VLEN_STRING_BYTES, |n| n as u64),
    };
    info.shape
        .iter()
        .skip(1)
        .fold(element, |acc, &d| acc.saturating_mul(d))
}

/// Whether fetching `columns` columns, `row_bytes` wide together, for only the `hit_rows`
/// rows (in `hit_runs` runs) that passed a filter moves fewer bytes than fetching them for
/// all `all_rows` candidate rows and dropping the rest.
pub fn late_fetch_pays(
    all_rows: u64,
    hit_rows: u64,
    hit_runs: u64,
    row_bytes: u64,
    columns: u64,
) -> bool {
    let runs = hit_runs
        .saturating_mul(RUN_COST_BYTES)
        .saturating_mul(columns);
    hit_rows.saturating_mul(row_bytes).saturating_add(runs) < all_rows.saturating_mul(row_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdfstream_protocol::ByteOrder;

    #[test]
    fn late_fetch_pays_only_when_runs_cost_less_than_the_skipped_rows() {
        // 1000 rows of 8 bytes; 10 hits in 10 runs: 80 + 160 < 8000.
        assert!(late_fetch_pays(1000, 10, 10, 8, 1));
        // Every row hits: never cheaper.
        assert!(!late_fetch_pays(1000, 1000, 1, 8, 1));
        // Every other row of 4 bytes: 500 runs cost more than the 2000 bytes skipped.
        assert!(!late_fetch_pays(1000, 500, 500, 4, 1));
        // No other column to fetch.
        assert!(!late_fetch_pays(1000, 0, 0, 0, 0));
    }

    #[test]
    fn row_bytes_counts_trailing_dimensions() {
        let info = |dtype, shape: Vec<u64>| DatasetInfo {
            attributes: Vec::new(),
            dtype,
            shape,
            data: None,
        };
        let f32 = Dtype::Float {
            size: 4,
            order: ByteOrder::Little,
        };
        assert_eq!(row_bytes(&info(f32.clone(), vec![100, 3])), 12);
        assert_eq!(row_bytes(&info(f32, vec![100])), 4);
        assert_eq!(row_bytes(&info(Dtype::VlenString, vec![7])), 16);
        assert_eq!(row_bytes(&info(Dtype::FixedString { len: 9 }, vec![7])), 9);
    }
}
