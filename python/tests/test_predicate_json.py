"""Pins the predicate shapes Polars hands an IO source (its JSON form is not stable across
versions): every form the planner should push down must still be read as such, and
planning with it must select the right rows. A Polars upgrade that changes a shape fails
here instead of silently reading every row."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.io.plugins import register_io_source

import polars_hdfstream as ph

SCHEMA = pl.Schema(
    {
        "Coordinates": pl.Array(pl.Float64, 3),
        "Masses": pl.Float32,
        "row_index": pl.UInt64,
    }
)


def received(expr: pl.Expr) -> pl.Expr | None:
    """The predicate Polars hands an IO source for `filter(expr)`."""
    seen: list[pl.Expr | None] = []

    def source(with_columns, predicate, n_rows, batch_size):
        seen.append(predicate)
        return iter([])

    register_io_source(source, schema=SCHEMA, is_pure=True).filter(expr).collect()
    assert len(seen) == 1
    return seen[0]


ri = pl.col("row_index")
c = pl.col("Coordinates")

ROW_FORMS = [
    ((ri >= 10) & (ri < 20), lambda i: (i >= 10) & (i < 20), "And"),
    (~((ri >= 10) & (ri < 20)), lambda i: (i < 10) | (i >= 20), "Or"),
    (ri.is_between(3, 8, closed="left"), lambda i: (i >= 3) & (i < 8), "Between"),
    (~ri.is_between(3, 8), lambda i: (i < 3) | (i > 8), "Or"),
    (ri.is_in([5, 1, 3]), lambda i: np.isin(i, [5, 1, 3]), "IsIn"),
    (~ri.is_in([5, 1, 3]), lambda i: ~np.isin(i, [5, 1, 3]), "Not(IsIn"),
    (ri < 20.5, lambda i: i < 20.5, "Cmp"),
    (ri.cast(pl.Int64) > 5, lambda i: i > 5, "Cmp"),
    (pl.lit(5) > ri, lambda i: i < 5, "Cmp"),
    (ri.eq_missing(4), lambda i: i == 4, "Cmp"),
    (ri != 4, lambda i: i != 4, "NotEq"),
]


@pytest.mark.parametrize(("expr", "mask", "shape"), ROW_FORMS, ids=[str(e[0]) for e in ROW_FORMS])
def test_row_index_shapes_are_read_and_planned(glob_url, gas, expr, mask, shape):
    pred = received(expr)
    assert pred is not None
    tree = ph.describe_predicate(ph.predicate_json(pred))
    assert "Unknown" not in tree
    assert shape in tree
    t = ph.open_table(glob_url, "PartType0")
    planned = t.plan(pred)
    idx = np.arange(gas.total)
    want = idx[mask(idx)]
    got = np.concatenate([np.arange(a, b) for a, b in planned]) if planned else np.zeros(0)
    np.testing.assert_array_equal(got, want)


POSITION_FORMS = [
    (c.arr.get(0) < 5.0, "axis: 0", "Lt"),
    (c.arr.get(1).is_between(1, 2), "axis: 1", "Between"),
    (c.arr.first() >= 20.0, "axis: 0", "GtEq"),
    (c.arr.get(-1, null_on_oob=True) < 5, "axis: 2", "Lt"),
    ((c.arr.get(0) < 1.0) | (c.arr.get(0) > 24.0), "axis: 0", "Or"),
]


@pytest.mark.parametrize(("expr", "axis", "shape"), POSITION_FORMS, ids=[str(e[0]) for e in POSITION_FORMS])
def test_position_shapes_are_read(glob_url, gas, expr, axis, shape):
    pred = received(expr)
    assert pred is not None
    tree = ph.describe_predicate(ph.predicate_json(pred))
    assert "Unknown" not in tree
    assert 'column: "Coordinates"' in tree and axis in tree and shape in tree
    # Planning prunes: fewer rows than the table, yet every matching row.
    t = ph.open_table(glob_url, "PartType0")
    planned = t.plan(pred)
    rows = np.concatenate([np.arange(a, b) for a, b in planned]) if planned else np.zeros(0)
    keep = pl.DataFrame({"Coordinates": gas.columns["Coordinates"]}).select(expr.alias("k"))["k"]
    want = np.flatnonzero(keep.to_numpy())
    assert len(rows) < gas.total
    assert np.isin(want, rows).all()


def test_unknown_shapes_plan_every_row(glob_url, gas):
    t = ph.open_table(glob_url, "PartType0")
    for expr in [pl.col("Masses") > 1.0, ri >= -1, (ri < 10) | (pl.col("Masses") > 1.0)]:
        pred = received(expr)
        assert t.plan(pred) == [(0, gas.total)], str(expr)


def test_is_in_list_is_decoded_from_polars_ipc():
    pred = received(ri.is_in([7, 2, 9]))
    assert pred is not None
    raw = pred.meta.serialize(format="json")
    # Polars writes the list as Arrow IPC bytes; the Python layer turns it into numbers.
    assert '"List":[' in raw.replace(" ", "")
    assert "NumList" not in raw
    assert '"NumList": [7, 2, 9]' in ph.predicate_json(pred)
