//! HDF5 datasets: metadata, typed reads, multi-slice and fancy reads.

use std::sync::Arc;

use hdfstream_protocol::{
    ArrayData, DatasetInfo, Dtype, NdArray, SliceSpec, TypedBuffer, VlenArray,
};
use ndarray::{ArrayD, IxDyn};

use super::attrs::{Attrs, HasAttrs};
use super::element::{Element, check_castable, dtype_name, into_strings, into_vec, is_exact};
use super::group::FileShared;
use super::path::base_name;
use crate::selection::{
    FancyIndex, Selection, apply_inverse, gather, plan_fancy, plan_multi_slice,
};
use crate::{Error, Result};

/// Metadata of a dataset as received.
#[derive(Debug)]
pub(crate) struct DatasetData {
    attrs: Attrs,
    dtype: Dtype,
    shape: Vec<u64>,
    inline: Option<ArrayData>,
}

impl DatasetData {
    pub(crate) fn from_wire(d: DatasetInfo) -> Self {
        Self {
            attrs: Attrs::from_wire(d.attributes),
            dtype: d.dtype,
            shape: d.shape,
            inline: d.data,
        }
    }
}

/// An HDF5 dataset of a remote file.
#[derive(Debug)]
pub struct Dataset {
    shared: Arc<FileShared>,
    path: String,
    data: Arc<DatasetData>,
}

impl HasAttrs for Dataset {
    fn attrs(&self) -> &Attrs {
        &self.data.attrs
    }
}

fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::InvalidSelection {
        reason: format!("{n} elements do not fit in memory on this platform"),
    })
}

fn shape_usize(shape: &[u64]) -> Result<Vec<usize>> {
    shape.iter().map(|&d| to_usize(d)).collect()
}

fn element_count(shape: &[u64]) -> Result<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::InvalidSelection {
            reason: format!("shape {shape:?} has too many elements"),
        })
}

fn wrap_array<T>(v: Vec<T>, shape: &[u64]) -> Result<ArrayD<T>> {
    let n = v.len();
    ArrayD::from_shape_vec(IxDyn(&shape_usize(shape)?), v).map_err(|_| Error::InvalidSelection {
        reason: format!("{n} elements received for result shape {shape:?}"),
    })
}

/// Gathers the selected elements of inline data locally (what the server would return).
fn gather_array(data: &ArrayData, spec: &SliceSpec, read_shape: Vec<u64>) -> Result<ArrayData> {
    Ok(match data {
        ArrayData::Nd(nd) => {
            macro_rules! g {
                ($($v:ident),*) => {
                    match &nd.data {
                        $(TypedBuffer::$v(v) => TypedBuffer::$v(gather(v, &nd.shape, spec)?),)*
                        TypedBuffer::Bytes { item_size, data } => {
                            let n = data.len().checked_div(*item_size).unwrap_or(0);
                            let idx: Vec<usize> = (0..n).collect();
                            let picked = gather(&idx, &nd.shape, spec)?;
                            let mut out = Vec::with_capacity(picked.len() * item_size);
                            for i in picked {
                                let s = i * item_size;
                                out.extend_from_slice(data.get(s..s + item_size).unwrap_or_default());
                            }
                            TypedBuffer::Bytes { item_size: *item_size, data: out }
                        }
                    }
                };
            }
            let buf = g!(I8, I16, I32, I64, U8, U16, U32, U64, F32, F64);
            ArrayData::Nd(NdArray {
                dtype: nd.dtype.clone(),
                shape: read_shape,
                data: buf,
            })
        }
        ArrayData::Vlen(v) => ArrayData::Vlen(VlenArray {
            shape: read_shape,
            elements: gather(&v.elements, &v.shape, spec)?,
        }),
    })
}

impl Dataset {
    pub(crate) fn new(shared: Arc<FileShared>, path: String, data: Arc<DatasetData>) -> Self {
        Self { shared, path, data }
    }

    /// Absolute HDF5 path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Virtual path of the file this dataset belongs to.
    pub fn file_path(&self) -> &str {
        &self.shared.vpath
    }

    /// Last component of the path.
    pub fn name(&self) -> &str {
        base_name(&self.path)
    }

    /// Element type.
    pub fn dtype(&self) -> &Dtype {
        &self.data.dtype
    }

    /// Dimensions; empty for a scalar dataset.
    pub fn shape(&self) -> &[u64] {
        &self.data.shape
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.data.shape.len()
    }

    /// Length of the first dimension (an error for scalar datasets).
    pub fn len(&self) -> Result<u64> {
        self.data
            .shape
            .first()
            .copied()
            .ok_or_else(|| Error::InvalidSelection {
                reason: format!("scalar dataset {} has no length", self.path),
            })
    }

    /// True when the dataset has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.shape.contains(&0)
    }

    /// Total number of elements (saturating at `u64::MAX` for a shape whose product
    /// overflows, which metadata can claim but no dataset can hold).
    pub fn size(&self) -> u64 {
        self.data
            .shape
            .iter()
            .fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// The whole contents, when the server inlined them with the metadata.
    pub fn inline_data(&self) -> Option<&ArrayData> {
        self.data.inline.as_ref()
    }

    /// Fetches a selection: locally from inline data, otherwise with one request (refused
    /// before it when the selection's size overflows).
    fn fetch(&self, spec: &SliceSpec, read_shape: Vec<u64>) -> Result<ArrayData> {
        element_count(&read_shape)?;
        if let Some(inline) = &self.data.inline {
            return gather_array(inline, spec, read_shape);
        }
        tracing::debug!(
            object = self.path,
            runs = spec.runs.len(),
            "requesting slice"
        );
        let data = self.shared.backend.request_slice_typed(
            &self.shared.vpath,
            &self.path,
            spec,
            &self.data.dtype,
        )?;
        let got = match &data {
            ArrayData::Nd(nd) => &nd.shape,
            ArrayData::Vlen(v) => &v.shape,
        };
        if element_count(got)? != element_count(&read_shape)? {
            return Err(Error::UnexpectedResponse {
                url: format!("{}:{}", self.shared.vpath, self.path),
                reason: format!("asked for shape {read_shape:?}, received {got:?}"),
            });
        }
        Ok(data)
    }

    /// Streams a selection of exactly `T` into `dest` (or gathers it from inline data).
    fn fetch_into<T: Element>(
        &self,
        spec: &SliceSpec,
        read_shape: Vec<u64>,
        dest: &mut [T],
    ) -> Result<()> {
        if self.data.inline.is_some() {
            let v: Vec<T> = into_vec(self.fetch(spec, read_shape)?)?;
            return copy_exact(&v, dest);
        }
        tracing::debug!(
            object = self.path,
            runs = spec.runs.len(),
            "requesting slice into buffer"
        );
        self.shared.backend.request_slice_into(
            &self.shared.vpath,
            &self.path,
            spec,
            &self.data.dtype,
            bytemuck::cast_slice_mut(dest),
        )
    }

    /// Reads the whole dataset as an array of `T`.
    pub fn read<T: Element>(&self) -> Result<ArrayD<T>> {
        self.read_slice(&Selection::all())
    }

    /// Reads a simple selection; integer-indexed dimensions are dropped from the result.
    pub fn read_slice<T: Element>(&self, sel: &Selection) -> Result<ArrayD<T>> {
        check_castable::<T>(&self.data.dtype)?;
        let r = sel.resolve(&self.data.shape)?;
        let v = into_vec::<T>(self.fetch(&r.to_slice_spec(), r.read_shape())?)?;
        wrap_array(v, &r.result_shape())
    }

    /// Reads a simple selection as decoded wire data (any element type, no dimension dropped).
    pub fn read_raw(&self, sel: &Selection) -> Result<ArrayData> {
        let r = sel.resolve(&self.data.shape)?;
        self.fetch(&r.to_slice_spec(), r.read_shape())
    }

    /// Reads a selection into `dest`, which must hold exactly as many elements.
    ///
    /// Same element type: streamed straight into `dest`. Otherwise only safe numeric
    /// conversions are allowed, and refused before any request.
    pub fn read_into<T: Element>(&self, sel: &Selection, dest: &mut [T]) -> Result<()> {
        let r = sel.resolve(&self.data.shape)?;
        self.read_spec_into(&r.to_slice_spec(), r.read_shape(), dest)
    }

    /// Like [`Dataset::read_into`] into an ndarray view, which must be C-contiguous (checked
    /// before any request; a column of a 2-D array is refused).
    pub fn read_into_view<T: Element, D: ndarray::Dimension>(
        &self,
        sel: &Selection,
        mut dest: ndarray::ArrayViewMut<'_, T, D>,
    ) -> Result<()> {
        let slice = dest.as_slice_mut().ok_or_else(|| Error::InvalidSelection {
            reason: "destination array is not C-contiguous".to_string(),
        })?;
        self.read_into(sel, slice)
    }

    fn read_spec_into<T: Element>(
        &self,
        spec: &SliceSpec,
        read_shape: Vec<u64>,
        dest: &mut [T],
    ) -> Result<()> {
        check_castable::<T>(&self.data.dtype)?;
        let n = element_count(&read_shape)?;
        if u64::try_from(dest.len()).ok() != Some(n) {
            return Err(Error::InvalidSelection {
                reason: format!(
                    "selection has {n} elements but the destination holds {}",
                    dest.len()
                ),
            });
        }
        if is_exact::<T>(&self.data.dtype) {
            self.fetch_into(spec, read_shape, dest)
        } else {
            let v: Vec<T> = into_vec(self.fetch(spec, read_shape)?)?;
            copy_exact(&v, dest)
        }
    }

    /// Reads several simple selections in one request, concatenated along dimension 0.
    ///
    /// They must agree in every other dimension and be ascending and non-overlapping in
    /// dimension 0 (which is never dropped).
    pub fn request_slices<T: Element>(&self, sels: &[Selection]) -> Result<ArrayD<T>> {
        check_castable::<T>(&self.data.dtype)?;
        let m = plan_multi_slice(sels, &self.data.shape)?;
        let read_shape = multi_read_shape(&m.spec);
        let v = into_vec::<T>(self.fetch(&m.spec, read_shape)?)?;
        wrap_array(v, &m.result_shape)
    }

    /// Like [`Dataset::request_slices`], into a caller's buffer of exactly the right length.
    pub fn request_slices_into<T: Element>(
        &self,
        sels: &[Selection],
        dest: &mut [T],
    ) -> Result<()> {
        let m = plan_multi_slice(sels, &self.data.shape)?;
        let read_shape = multi_read_shape(&m.spec);
        self.read_spec_into(&m.spec, read_shape, dest)
    }

    /// Fancy read: `index` (integers or a boolean mask) selects rows of dimension 0 in any
    /// order with repeats; `rest` selects the other dimensions.
    pub fn read_fancy<'a, T: Element>(
        &self,
        index: impl Into<FancyIndex<'a>>,
        rest: &Selection,
    ) -> Result<ArrayD<T>> {
        check_castable::<T>(&self.data.dtype)?;
        let plan = plan_fancy(index.into(), rest, &self.data.shape)?;
        let row_len = to_usize(plan.row_elements())?;
        let rows = to_usize(plan.rows.row_count())?;
        let mut read: Vec<T> = Vec::new();
        let exact = is_exact::<T>(&self.data.dtype);
        if exact {
            read = vec![bytemuck::Zeroable::zeroed(); rows.saturating_mul(row_len)];
        }
        let mut offset = 0usize;
        for spec in plan.requests(hdfstream_protocol::MAX_SLICES) {
            let read_shape = multi_read_shape(&spec);
            let n = to_usize(element_count(&read_shape)?)?;
            if exact {
                let dest =
                    read.get_mut(offset..offset + n)
                        .ok_or_else(|| Error::InvalidSelection {
                            reason: "fancy read plan exceeds its buffer".to_string(),
                        })?;
                self.fetch_into(&spec, read_shape, dest)?;
            } else {
                read.extend(into_vec::<T>(self.fetch(&spec, read_shape)?)?);
            }
            offset += n;
        }
        let out = match &plan.inverse {
            Some(inv) => apply_inverse(&read, row_len, inv)?,
            None => read,
        };
        wrap_array(out, &plan.result_shape)
    }

    /// Reads the whole dataset as strings (fixed-length ones lose their NUL padding).
    pub fn read_strings(&self) -> Result<Vec<String>> {
        match &self.data.dtype {
            Dtype::FixedString { .. } | Dtype::VlenString => {}
            other => {
                return Err(Error::TypeMismatch {
                    expected: "string".to_string(),
                    found: dtype_name(other),
                });
            }
        }
        let r = Selection::all().resolve(&self.data.shape)?;
        into_strings(&self.fetch(&r.to_slice_spec(), r.read_shape())?)
    }
}

fn multi_read_shape(spec: &SliceSpec) -> Vec<u64> {
    let mut shape = vec![spec.runs.iter().map(|r| r.count).sum()];
    shape.extend(spec.rest.iter().map(|r| r.count));
    shape
}

fn copy_exact<T: Copy>(src: &[T], dest: &mut [T]) -> Result<()> {
    if src.len() != dest.len() {
        return Err(Error::InvalidSelection {
            reason: format!(
                "{} elements received for a destination of {}",
                src.len(),
                dest.len()
            ),
        });
    }
    dest.copy_from_slice(src);
    Ok(())
}
