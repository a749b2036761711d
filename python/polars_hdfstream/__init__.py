"""Lazy Polars scans and Arrow streams of HDF5 groups served by an hdfstream server.

>>> import polars as pl, polars_hdfstream as ph
>>> url = "http://127.0.0.1:8080/hdfstream/msgpack/snap_0000.*.hdf5"
>>> lf = ph.scan_hdfstream(url, "PartType0")                     # doctest: +SKIP
>>> lf.filter(pl.col("row_index") < 1000).select("Masses").collect()  # doctest: +SKIP

A group becomes a table: every dataset whose first dimension is the row count is a column
(`(N, 3)` datasets become `Array(Float64, 3)` columns), followed by a virtual `row_index`
column (the global row number over all files) and, on request, a file-path column.

What a scan pushes to the server:

* projections: only the datasets a query uses are fetched;
* ``head(n)`` / ``n_rows``: only the first rows are fetched;
* conditions on ``row_index`` (comparisons, ``is_between``, ``is_in``, ``&``, ``|``, ``~``):
  only those rows are fetched;
* bounds on components of ``Coordinates`` (``pl.col("Coordinates").arr.get(k) < x``,
  ``is_between``): only the rows of the SWIFT cells (``Cells/``) that may hold such
  positions are fetched. Polars pushes ``arr.get(k)`` into a scan next to other conditions
  only when written ``arr.get(k, null_on_oob=True)`` or ``arr.first()``; in its default form
  it is pushed only when it is alone or combined with other ``arr.get`` terms.

Every predicate Polars hands to the scan is evaluated again on each batch, so a condition
the scan cannot use costs bytes, never correctness.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl
from polars.io.plugins import register_io_source

from ._lib import (
    AuthenticationError,
    Batch,
    HdfstreamError,
    NotFoundError,
    Reader,
    Table,
    __version__,
    describe_predicate,
)

__all__ = [
    "AuthenticationError",
    "Batch",
    "HdfstreamError",
    "HdfstreamTable",
    "NotFoundError",
    "Reader",
    "Table",
    "__version__",
    "describe_predicate",
    "open_table",
    "predicate_json",
    "read_region",
    "record_batch_reader",
    "scan_hdfstream",
]

def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _is_axis(a: Any) -> bool:
    return a is None or (
        isinstance(a, Sequence)
        and not isinstance(a, str)
        and len(a) == 2
        and all(_is_number(x) for x in a)
    )


def _box(b: Any, what: str) -> list[tuple[float, float] | None]:
    if isinstance(b, str) or not isinstance(b, Sequence) or len(b) != 3:
        msg = (
            f"{what} must be three axes [(x0, x1), (y0, y1), (z0, z1)] "
            f"(None for an unbounded axis), not {b!r}"
        )
        raise ValueError(msg)
    out: list[tuple[float, float] | None] = []
    for axis, a in zip("xyz", b):
        if not _is_axis(a):
            msg = f"{what}: the {axis} axis must be (lo, hi) or None, not {a!r}"
            raise ValueError(msg)
        out.append(None if a is None else (float(a[0]), float(a[1])))
    return out


def _region(region: Any) -> list[list[tuple[float, float] | None]] | None:
    """One box ``[(x0, x1), (y0, y1), (z0, z1)]``, or a list of such boxes (a union)."""
    if region is None:
        return None
    if isinstance(region, str) or not isinstance(region, Sequence) or not region:
        msg = f"region must be a box [(x0, x1), (y0, y1), (z0, z1)] or a list of boxes, not {region!r}"
        raise ValueError(msg)
    if all(_is_axis(a) for a in region) and len(region) == 3:
        return [_box(region, "the region box")]
    return [_box(b, f"box {i} of the region") for i, b in enumerate(region)]


def _ipc_numbers(raw: list[Any]) -> list[Any] | None:
    """The numbers of an `is_in` list that Polars serialised as Arrow IPC stream bytes."""
    if not all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        return None
    try:
        s = pl.read_ipc_stream(bytes(raw)).to_series(0)
        while isinstance(s.dtype, (pl.List, pl.Array)):
            s = s.explode()
    except Exception:  # noqa: BLE001 - an unreadable list only means no pushdown
        return None
    if not (s.dtype.is_integer() or s.dtype.is_float()):
        return None
    # NaN and infinities match no row index; JSON has no spelling for them.
    return [
        v
        for v in s.to_list()
        if v is None or isinstance(v, int) or math.isfinite(v)
    ]


def _decode_lists(node: Any) -> Any:
    if isinstance(node, dict):
        lit = node.get("Literal")
        if len(node) == 1 and isinstance(lit, dict) and len(lit) == 1:
            scalar = lit.get("Scalar")
            if isinstance(scalar, dict) and len(scalar) == 1 and isinstance(scalar.get("List"), list):
                values = _ipc_numbers(scalar["List"])
                if values is not None:
                    return {"Literal": {"NumList": values}}
                return node
        return {k: _decode_lists(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_decode_lists(v) for v in node]
    return node


def predicate_json(predicate: pl.Expr) -> str:
    """The JSON form of a predicate the Rust planner reads.

    Polars' own ``Expr.meta.serialize(format="json")``, with ``is_in`` lists (which Polars
    writes as Arrow IPC bytes) replaced by ``{"Literal": {"NumList": [...]}}``.
    """
    text = predicate.meta.serialize(format="json")
    try:
        tree = json.loads(text)
    except ValueError:
        return text
    return json.dumps(_decode_lists(tree))


class HdfstreamTable:
    """A remote group opened as a table: scans, streams and request counts.

    Made by :func:`open_table`. Opening reads metadata only; every scan and stream makes
    its own data requests.
    """

    def __init__(self, table: Table) -> None:
        self._table = table
        self._schema = pl.Schema(table)

    @property
    def table(self) -> Table:
        """The Rust table."""
        return self._table

    @property
    def schema(self) -> pl.Schema:
        """The Polars schema of the full table."""
        return self._schema

    @property
    def num_rows(self) -> int:
        """Rows of the table over all files (before any region)."""
        return self._table.num_rows

    @property
    def files(self) -> list[tuple[str, int]]:
        """The files in table order, with their row counts."""
        return self._table.files

    def region_rows(self) -> list[tuple[int, int]] | None:
        """The global ``[start, stop)`` ranges the region selects (``None`` without one)."""
        return self._table.region_rows()

    def stats(self) -> dict[str, Any]:
        """Requests so far: ``metadata_requests``, ``data_requests`` and ``rows`` (rows
        requested per dataset path)."""
        return self._table.stats()

    def reset_stats(self) -> None:
        """Sets the request counts back to zero."""
        self._table.reset_stats()

    def plan(self, predicate: pl.Expr | None = None, n_rows: int | None = None) -> list[tuple[int, int]]:
        """The global ``[start, stop)`` row ranges a scan with ``predicate`` and ``n_rows``
        fetches (before the predicate is evaluated on them)."""
        pj = predicate_json(predicate) if predicate is not None else None
        return self._table.plan(pj, n_rows)

    def _source(
        self,
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        # batch_size is only a hint; the table's own batch size is kept.
        del batch_size
        fetch = None
        if with_columns is not None:
            fetch = list(with_columns)
            if predicate is not None:
                fetch += [c for c in predicate.meta.root_names() if c not in fetch]
            if not fetch:
                # Only a row count is wanted: one column keeps the frames' heights.
                fetch = [next(iter(self._schema))]
        pj = predicate_json(predicate) if predicate is not None else None
        reader = self._table.scan(fetch, pj, n_rows)
        while (batch := reader.next_batch()) is not None:
            df = pl.DataFrame(batch)
            if predicate is not None:
                df = df.filter(predicate)
            if with_columns:
                df = df.select(with_columns)
            if df.height:
                yield df

    def scan(self) -> pl.LazyFrame:
        """A LazyFrame over the table (see the module documentation for what is pushed down)."""
        return register_io_source(
            self._source,
            schema=self._schema,
            is_pure=True,
            explain_name="hdfstream",
            explain_detail=f"{self._table.url} {self._table.group}",
        )

    def record_batch_reader(
        self,
        columns: Sequence[str] | None = None,
        rows: Any = None,
    ) -> Reader:
        """A reader of ``columns`` (``None``: all) over ``rows`` with ``__arrow_c_stream__``.

        ``rows``: ``None`` (every row of the region, or of the table), a ``range`` with
        step 1, a ``(start, stop)`` pair, or a list of such pairs (global row numbers).
        """
        return self._table.stream(None if columns is None else list(columns), _rows(rows))


def _rows(rows: Any) -> list[tuple[int, int]] | None:
    if rows is None:
        return None
    if isinstance(rows, range):
        if rows.step != 1:
            msg = f"rows: only ranges with step 1 are supported, not {rows!r}"
            raise ValueError(msg)
        return [(rows.start, rows.stop)]
    if isinstance(rows, Sequence) and len(rows) == 2 and all(isinstance(x, int) for x in rows):
        rows = [rows]
    if isinstance(rows, Sequence):
        out = []
        for r in rows:
            if not (isinstance(r, Sequence) and len(r) == 2 and all(isinstance(x, int) for x in r)):
                msg = f"rows must be (start, stop) pairs, not {r!r}"
                raise ValueError(msg)
            if r[0] < 0 or r[1] < r[0]:
                msg = f"rows {r!r}: need 0 <= start <= stop"
                raise ValueError(msg)
            out.append((int(r[0]), int(r[1])))
        return out
    msg = f"rows must be a range, a (start, stop) pair or a list of pairs, not {rows!r}"
    raise ValueError(msg)


def open_table(
    url: str,
    group: str,
    *,
    file: str | None = None,
    region: Any = None,
    row_index: str | None = "row_index",
    include_file_paths: str | None = None,
    batch_size: int | None = None,
    concurrency: int = 4,
    user: str | None = None,
    password: str | None = None,
) -> HdfstreamTable:
    """Opens ``group`` of the file or glob ``url`` names (metadata only).

    ``url``: ``http(s)://host/base/msgpack/<file or glob>`` (a glob such as
    ``snap_0000.*.hdf5`` concatenates the group over the files in natural order), a base URL
    with ``file=``, or ``alias:<path>`` (aliases from ``~/.config/hdfstream/config.yml``).
    ``region``: a box ``[(x0, x1), (y0, y1), (z0, z1)]`` (``None`` for an unbounded axis) or a
    list of boxes; the table is then the rows of the SWIFT cells the region touches.
    ``row_index``: name of the virtual row-number column (``None``: none).
    ``include_file_paths``: name of a column holding each row's file path.
    ``batch_size``: rows per batch (default: about 8 MiB of the columns read, within
    65,536 to 1,048,576 rows). ``concurrency``: requests in flight.
    ``user``/``password``: HTTP Basic credentials (default: ``HDFSTREAM_USER`` and
    ``HDFSTREAM_PASSWORD``, or the alias').
    """
    t = Table(
        url,
        group,
        file=file,
        region=_region(region),
        row_index=row_index,
        include_file_paths=include_file_paths,
        batch_size=batch_size,
        concurrency=concurrency,
        user=user,
        password=password,
    )
    return HdfstreamTable(t)


def scan_hdfstream(
    url: str,
    group: str,
    *,
    file: str | None = None,
    region: Any = None,
    row_index: str | None = "row_index",
    include_file_paths: str | None = None,
    batch_size: int | None = None,
    concurrency: int = 4,
    user: str | None = None,
    password: str | None = None,
) -> pl.LazyFrame:
    """A LazyFrame over ``group`` of the file or glob ``url`` names (see :func:`open_table`)."""
    return open_table(
        url,
        group,
        file=file,
        region=region,
        row_index=row_index,
        include_file_paths=include_file_paths,
        batch_size=batch_size,
        concurrency=concurrency,
        user=user,
        password=password,
    ).scan()


def record_batch_reader(
    url: str,
    group: str,
    *,
    columns: Sequence[str] | None = None,
    rows: Any = None,
    file: str | None = None,
    region: Any = None,
    row_index: str | None = None,
    include_file_paths: str | None = None,
    batch_size: int | None = None,
    concurrency: int = 4,
    user: str | None = None,
    password: str | None = None,
) -> Reader:
    """An Arrow stream (``__arrow_c_stream__``) of ``columns`` over ``rows``.

    Usable with ``pyarrow.RecordBatchReader.from_stream(reader)``, DuckDB or
    ``pl.DataFrame(reader)``; iterating it yields batches with ``__arrow_c_array__``.
    ``rows`` as in :meth:`HdfstreamTable.record_batch_reader`; the other arguments as in
    :func:`open_table` (no row index unless asked for).
    """
    return open_table(
        url,
        group,
        file=file,
        region=region,
        row_index=row_index,
        include_file_paths=include_file_paths,
        batch_size=batch_size,
        concurrency=concurrency,
        user=user,
        password=password,
    ).record_batch_reader(columns, rows)


def read_region(
    url: str,
    group: str,
    region: Any,
    columns: Sequence[str] | None = None,
    **kwargs: Any,
) -> pl.DataFrame:
    """The rows of the SWIFT cells ``region`` touches, as a DataFrame (zero-copy for numbers).

    Further keyword arguments as in :func:`open_table`.
    """
    kwargs.setdefault("row_index", None)
    t = open_table(url, group, region=region, **kwargs)
    reader = t.record_batch_reader(columns)
    frames = [pl.DataFrame(b) for b in reader]
    if not frames:
        schema = t.schema if columns is None else pl.Schema({c: t.schema[c] for c in columns})
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, rechunk=False)
