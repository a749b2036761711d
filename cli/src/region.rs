//! `--region` / `--exact` options shared by `get` and `export`.

use clap::Args;
use hdfstream::Error;
use hdfstream::table::{DEFAULT_PADDING, DEFAULT_POSITION_COLUMN, Region};

/// Spatial selection through the SWIFT `Cells/` index.
#[derive(Debug, Args, Default)]
pub(crate) struct RegionArgs {
    /// Only the particles of the cells this box touches, as x0:x1,y0:y1,z0:z1 in the
    /// snapshot's length units (`:` leaves an axis unbounded; lo > hi wraps across the
    /// periodic boundary). Repeat for a union of boxes.
    #[arg(long = "region", value_name = "BOX")]
    pub(crate) regions: Vec<String>,
    /// With --region: keep only the particles inside the box(es), not every particle of
    /// the touched cells.
    #[arg(long, requires = "regions")]
    pub(crate) exact: bool,
    /// With --region: padding of the cells in cell sizes when the file has no
    /// Cells/MinPositions and MaxPositions.
    #[arg(long, default_value_t = DEFAULT_PADDING, requires = "regions")]
    pub(crate) cell_padding: f64,
    /// With --region: the (N, 3) position dataset of the group.
    #[arg(long, default_value = DEFAULT_POSITION_COLUMN, requires = "regions")]
    pub(crate) position_column: String,
}

impl RegionArgs {
    /// The region, if any box was given.
    pub(crate) fn region(&self) -> Result<Option<Region>, Error> {
        if self.regions.is_empty() {
            return Ok(None);
        }
        let region = Region::parse(&self.regions)?;
        if !(self.cell_padding.is_finite() && self.cell_padding >= 0.0) {
            return Err(Error::InvalidSelection {
                reason: format!(
                    "--cell-padding {} must be a non-negative number",
                    self.cell_padding
                ),
            });
        }
        Ok(Some(region))
    }
}
