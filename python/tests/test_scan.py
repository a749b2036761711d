"""`scan_hdfstream` against our server over a 3-file sample, compared with h5py reading the
same files."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import polars_hdfstream as ph

from cells import region_rows


def as_np(s: pl.Series) -> np.ndarray:
    """A column as numpy (Array columns as 2-D)."""
    if isinstance(s.dtype, pl.Array):
        return np.asarray(s.to_numpy())
    return s.to_numpy()


def rows_fetched(t: ph.HdfstreamTable, name: str) -> int:
    """Rows requested of dataset `name` of PartType0 since the last reset."""
    return t.stats()["rows"].get(f"/PartType0/{name}", 0)


@pytest.fixture
def table(glob_url: str) -> ph.HdfstreamTable:
    return ph.open_table(glob_url, "PartType0")


def test_whole_table_and_schema(table, gas):
    df = table.scan().collect()
    assert table.num_rows == gas.total
    assert [r for _, r in table.files] == gas.rows
    assert df.height == gas.total
    assert set(df.columns) == set(gas.columns) | {"row_index"}
    for name, want in gas.columns.items():
        np.testing.assert_array_equal(as_np(df[name]), want, err_msg=name)
    np.testing.assert_array_equal(df["row_index"].to_numpy(), np.arange(gas.total))
    assert df.schema == table.schema


def test_projection_fetches_only_the_columns_used(table, gas):
    table.reset_stats()
    df = table.scan().select("Masses", "ParticleIDs").collect()
    assert df.columns == ["Masses", "ParticleIDs"]
    np.testing.assert_array_equal(df["Masses"].to_numpy(), gas.columns["Masses"])
    np.testing.assert_array_equal(df["ParticleIDs"].to_numpy(), gas.columns["ParticleIDs"])
    fetched = set(table.stats()["rows"])
    assert fetched == {"/PartType0/Masses", "/PartType0/ParticleIDs"}


def test_row_index_filter_fetches_only_those_rows(table, gas):
    # Crosses the boundary between the first and second file.
    a = gas.rows[0] - 100
    b = gas.rows[0] + 250
    table.reset_stats()
    df = (
        table.scan()
        .filter((pl.col("row_index") >= a) & (pl.col("row_index") < b))
        .select("row_index", "Masses")
        .collect()
    )
    np.testing.assert_array_equal(df["row_index"].to_numpy(), np.arange(a, b))
    np.testing.assert_array_equal(df["Masses"].to_numpy(), gas.columns["Masses"][a:b])
    assert rows_fetched(table, "Masses") == b - a


@pytest.mark.parametrize(
    ("expr", "mask"),
    [
        (lambda r: r.is_in([5, 17, 3, 10**9]), lambda i: np.isin(i, [5, 17, 3])),
        (lambda r: ~r.is_between(100, 19_900), lambda i: (i < 100) | (i > 19_900)),
        (lambda r: r < 20.5, lambda i: i < 20.5),
        (lambda r: (r == 7) | (r > 19_990), lambda i: (i == 7) | (i > 19_990)),
    ],
)
def test_row_index_forms(table, gas, expr, mask):
    idx = np.arange(gas.total)
    want = idx[mask(idx)]
    table.reset_stats()
    df = table.scan().filter(expr(pl.col("row_index"))).select("row_index", "Densities").collect()
    np.testing.assert_array_equal(df["row_index"].to_numpy(), want)
    np.testing.assert_array_equal(df["Densities"].to_numpy(), gas.columns["Densities"][want])
    assert rows_fetched(table, "Densities") == len(want)


def test_data_filter(table, gas):
    temp = gas.columns["Temperatures"]
    x = float(np.quantile(temp, 0.9))
    df = (
        table.scan()
        .filter(pl.col("Temperatures") > x)
        .select("row_index", "Temperatures", "Masses")
        .collect()
    )
    want = np.flatnonzero(temp > np.float32(x))
    assert 0 < len(want) < gas.total
    np.testing.assert_array_equal(df["row_index"].to_numpy(), want)
    np.testing.assert_array_equal(df["Masses"].to_numpy(), gas.columns["Masses"][want])


def test_data_and_row_index_filter(table, gas):
    temp = gas.columns["Temperatures"]
    x = float(np.median(temp))
    table.reset_stats()
    df = (
        table.scan()
        .filter((pl.col("row_index") < 3000) & (pl.col("Temperatures") > x))
        .select("row_index")
        .collect()
    )
    want = np.flatnonzero((np.arange(gas.total) < 3000) & (temp > np.float32(x)))
    np.testing.assert_array_equal(df["row_index"].to_numpy(), want)
    assert rows_fetched(table, "Temperatures") == 3000


def test_head_before_and_after_filter(table, gas):
    ids = gas.columns["ParticleIDs"]
    truth = pl.DataFrame({"ParticleIDs": ids, "row_index": np.arange(gas.total, dtype=np.uint64)})
    cut = int(np.sort(ids[:50])[25])
    table.reset_stats()
    got = table.scan().head(5).collect()
    np.testing.assert_array_equal(got["ParticleIDs"].to_numpy(), ids[:5])
    assert rows_fetched(table, "ParticleIDs") == 5
    # head then filter: the filter sees only the first 40 rows.
    q = lambda lf: lf.head(40).filter(pl.col("ParticleIDs") > cut).select("row_index", "ParticleIDs")
    want = q(truth.lazy()).collect()
    got = q(table.scan()).collect()
    assert 0 < want.height < 40
    assert got.to_dicts() == want.to_dicts()
    # filter then head.
    q = lambda lf: lf.filter(pl.col("ParticleIDs") > cut).head(7).select("row_index", "ParticleIDs")
    want = q(truth.lazy()).collect()
    got = q(table.scan()).collect()
    assert want.height == 7
    assert got.to_dicts() == want.to_dicts()


def test_streaming_engine(table, gas):
    df = (
        table.scan()
        .filter(pl.col("row_index") >= gas.total - 1000)
        .select("HaloID")
        .collect(engine="streaming")
    )
    np.testing.assert_array_equal(df["HaloID"].to_numpy(), gas.columns["HaloID"][-1000:])


def test_join_with_halo_catalogue(server, glob_url, gas, halos):
    parts = ph.scan_hdfstream(glob_url, "PartType0").select("ParticleIDs", "HaloID", "Masses")
    cat = ph.scan_hdfstream(server.url("halos_0000.hdf5"), "Halos").select("ID", "Mass")
    got = (
        parts.join(cat, left_on="HaloID", right_on="ID")
        .group_by("HaloID")
        .agg(pl.len().alias("n"), pl.col("Masses").sum().alias("m"), pl.col("Mass").first())
        .sort("HaloID")
        .collect()
    )
    tp = pl.DataFrame({k: gas.columns[k] for k in ("ParticleIDs", "HaloID", "Masses")})
    tc = pl.DataFrame({"ID": halos.columns["ID"], "Mass": halos.columns["Mass"]})
    want = (
        tp.join(tc, left_on="HaloID", right_on="ID")
        .group_by("HaloID")
        .agg(pl.len().alias("n"), pl.col("Masses").sum().alias("m"), pl.col("Mass").first())
        .sort("HaloID")
    )
    assert want.height > 1
    assert got["HaloID"].to_list() == want["HaloID"].to_list()
    assert got["n"].to_list() == want["n"].to_list()
    np.testing.assert_allclose(got["m"].to_numpy(), want["m"].to_numpy(), rtol=1e-5)
    np.testing.assert_array_equal(got["Mass"].to_numpy(), want["Mass"].to_numpy())


def test_multi_file_glob_and_file_paths(glob_url, gas):
    t = ph.open_table(glob_url, "PartType0", include_file_paths="file")
    assert [f.rsplit("/", 1)[-1] for f, _ in t.files] == [p.name for p in gas.files]
    df = t.scan().select("file", "row_index").collect()
    want = np.repeat([f for f, _ in t.files], gas.rows)
    assert df["file"].to_list() == want.tolist()
    # One file of the glob, named by `file=` on a base URL.
    base = glob_url.split("/msgpack/")[0]
    one = ph.scan_hdfstream(base, "PartType0", file=gas.files[1].name).select("Masses").collect()
    np.testing.assert_array_equal(
        one["Masses"].to_numpy(),
        gas.columns["Masses"][gas.offsets[1] : gas.offsets[1] + gas.rows[1]],
    )


def test_explain_names_the_source(table):
    plan = table.scan().filter(pl.col("row_index") < 10).explain()
    assert "PYTHON[hdfstream]" in plan
    assert "PartType0" in plan


BOX = [(3.0, 9.0), (20.0, 4.0), None]  # wraps in y, unbounded in z


def test_region_is_the_rows_of_the_touched_cells(glob_url, snap_files, gas):
    t = ph.open_table(glob_url, "PartType0", region=BOX)
    want = region_rows(snap_files, "PartType0", [BOX])
    assert 0 < len(want) < gas.total
    t.reset_stats()
    df = t.scan().select("row_index", "ParticleIDs").collect()
    np.testing.assert_array_equal(df["row_index"].to_numpy(), want)
    np.testing.assert_array_equal(df["ParticleIDs"].to_numpy(), gas.columns["ParticleIDs"][want])
    assert rows_fetched(t, "ParticleIDs") == len(want)
    # A union of boxes, and head() within the region.
    boxes = [BOX, [(20.0, 24.0), (0.0, 2.0), (0.0, 25.0)]]
    want2 = region_rows(snap_files, "PartType0", boxes)
    got = ph.scan_hdfstream(glob_url, "PartType0", region=boxes).select("row_index").collect()
    np.testing.assert_array_equal(got["row_index"].to_numpy(), want2)
    head = t.scan().head(10).select("row_index").collect()
    np.testing.assert_array_equal(head["row_index"].to_numpy(), want[:10])


def test_read_region(glob_url, snap_files, gas):
    want = region_rows(snap_files, "PartType0", [BOX])
    df = ph.read_region(glob_url, "PartType0", BOX, columns=["Coordinates", "Masses"])
    assert df.columns == ["Coordinates", "Masses"]
    np.testing.assert_array_equal(as_np(df["Coordinates"]), gas.columns["Coordinates"][want])
    np.testing.assert_array_equal(df["Masses"].to_numpy(), gas.columns["Masses"][want])


@pytest.mark.parametrize(
    ("expr", "mask"),
    [
        (
            lambda c: (c.arr.get(0) >= 2.0) & (c.arr.get(0) < 6.0),
            lambda p: (p[:, 0] >= 2.0) & (p[:, 0] < 6.0),
        ),
        (lambda c: c.arr.get(2).is_between(10.0, 12.0), lambda p: (p[:, 2] >= 10.0) & (p[:, 2] <= 12.0)),
        (
            lambda c: (c.arr.get(1, null_on_oob=True) < 3.0) | (c.arr.get(1, null_on_oob=True) > 23.0),
            lambda p: (p[:, 1] < 3.0) | (p[:, 1] > 23.0),
        ),
    ],
)
def test_position_filter_prunes_by_cells(table, gas, expr, mask):
    pos = gas.columns["Coordinates"]
    want = np.flatnonzero(mask(pos))
    assert 0 < len(want) < gas.total
    pred = expr(pl.col("Coordinates"))
    table.reset_stats()
    df = table.scan().filter(pred).select("row_index", "Coordinates").collect()
    np.testing.assert_array_equal(df["row_index"].to_numpy(), want)
    np.testing.assert_array_equal(as_np(df["Coordinates"]), pos[want])
    fetched = rows_fetched(table, "Coordinates")
    # Pruned: fewer rows than the table, at least the matching ones.
    assert len(want) <= fetched < gas.total
    planned = table.plan(pred)
    planned_rows = np.concatenate([np.arange(a, b) for a, b in planned])
    assert len(planned_rows) == fetched
    assert np.isin(want, planned_rows).all()


def test_position_filter_next_to_a_data_filter(table, gas):
    # Polars keeps the fallible arr.get(k) above the scan here; the result must not change.
    pos = gas.columns["Coordinates"]
    temp = gas.columns["Temperatures"]
    x = float(np.median(temp))
    df = (
        table.scan()
        .filter((pl.col("Coordinates").arr.get(0) < 5.0) & (pl.col("Temperatures") > x))
        .select("row_index")
        .collect()
    )
    want = np.flatnonzero((pos[:, 0] < 5.0) & (temp > np.float32(x)))
    np.testing.assert_array_equal(df["row_index"].to_numpy(), want)


def test_batches_are_zero_copy(table):
    pa = pytest.importorskip("pyarrow")
    reader = table.table.stream(["Masses", "Coordinates"], [(0, 1000)])
    batch = reader.next_batch()
    assert batch is not None and batch.num_rows == 1000
    df = pl.DataFrame(batch)
    # pyarrow imports the capsule without copying: its buffer addresses are Rust's.
    rb = pa.record_batch(batch)
    masses = rb.column("Masses").buffers()[1].address
    coords = rb.column("Coordinates").values.buffers()[1].address
    assert df["Masses"].to_numpy(allow_copy=False).ctypes.data == masses
    assert df["Coordinates"].to_numpy(allow_copy=False).ctypes.data == coords
