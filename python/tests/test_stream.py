"""`record_batch_reader` (`__arrow_c_stream__`) and the errors a scan raises."""

from __future__ import annotations

import socket

import numpy as np
import polars as pl
import pytest

import polars_hdfstream as ph
from conftest import PASSWORD, USER


def test_pyarrow_reads_the_stream(glob_url, gas):
    pa = pytest.importorskip("pyarrow")
    a, b = 150, gas.rows[0] + gas.rows[1] + 40  # spans all three files
    reader = ph.record_batch_reader(
        glob_url, "PartType0", columns=["Coordinates", "HaloID"], rows=(a, b), batch_size=1000
    )
    assert reader.num_rows == b - a
    rb = pa.RecordBatchReader.from_stream(reader)
    assert rb.schema.names == ["Coordinates", "HaloID"]
    tab = rb.read_all()
    assert tab.num_rows == b - a
    np.testing.assert_array_equal(tab.column("HaloID").to_numpy(), gas.columns["HaloID"][a:b])
    coords = np.stack(tab.column("Coordinates").to_pylist())
    np.testing.assert_array_equal(coords, gas.columns["Coordinates"][a:b])
    # The stream is handed over once.
    with pytest.raises(ValueError, match="consumed"):
        reader.__arrow_c_stream__()


def test_stream_into_polars_and_iteration(glob_url, gas):
    ranges = [(10, 20), (5000, 5100), (gas.total - 5, gas.total)]
    want = np.concatenate([np.arange(a, b) for a, b in ranges])
    df = pl.DataFrame(ph.record_batch_reader(glob_url, "PartType0", columns=["Masses"], rows=ranges))
    np.testing.assert_array_equal(df["Masses"].to_numpy(), gas.columns["Masses"][want])
    got = [
        pl.DataFrame(b)
        for b in ph.record_batch_reader(
            glob_url, "PartType0", columns=["ParticleIDs"], rows=range(0, 2500), batch_size=1000
        )
    ]
    assert [f.height for f in got] == [1000, 1000, 500]
    np.testing.assert_array_equal(
        pl.concat(got)["ParticleIDs"].to_numpy(), gas.columns["ParticleIDs"][:2500]
    )


def test_missing_group_raises_not_found(glob_url):
    with pytest.raises(ph.NotFoundError, match="PartType9"):
        ph.scan_hdfstream(glob_url, "PartType9")
    assert issubclass(ph.NotFoundError, ph.HdfstreamError)


def test_missing_file_raises_not_found(server):
    with pytest.raises(ph.NotFoundError, match="nope.hdf5"):
        ph.scan_hdfstream(server.url("nope.hdf5"), "PartType0")


def test_unknown_column_raises(glob_url):
    lf = ph.scan_hdfstream(glob_url, "PartType0")
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        lf.select("NoSuchColumn").collect()
    with pytest.raises(ValueError, match="NoSuchColumn"):
        ph.record_batch_reader(glob_url, "PartType0", columns=["NoSuchColumn"])


def test_bad_arguments(glob_url, server):
    with pytest.raises(ValueError, match="no file"):
        ph.scan_hdfstream(server.base, "PartType0")
    with pytest.raises(ValueError, match="axis"):
        ph.scan_hdfstream(glob_url, "PartType0", region=[(0, 1), (0, 1), "z"])
    with pytest.raises(ValueError, match="must lie in"):
        ph.scan_hdfstream(glob_url, "PartType0", region=[(0, 100), (0, 1), (0, 1)])
    with pytest.raises(ValueError, match="not within"):
        ph.record_batch_reader(glob_url, "PartType0", rows=(0, 10**9))


def test_connection_refused_raises():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ph.HdfstreamError, match=str(port)):
        ph.scan_hdfstream(f"http://127.0.0.1:{port}/hdfstream/msgpack/x.hdf5", "PartType0")


def test_authentication(auth_server, gas):
    # The users file makes wrong credentials fail on every request (anonymous requests are
    # refused only where an access rule asks for a role).
    url = auth_server.url("snap_0000.*.hdf5")
    with pytest.raises(ph.AuthenticationError):
        ph.scan_hdfstream(url, "PartType0", user=USER, password="wrong")
    df = ph.scan_hdfstream(url, "PartType0", user=USER, password=PASSWORD).select("Masses").head(3).collect()
    np.testing.assert_array_equal(df["Masses"].to_numpy(), gas.columns["Masses"][:3])


def test_duckdb_queries_the_stream(glob_url, gas):
    duckdb = pytest.importorskip("duckdb")
    a, b = 1000, gas.total - 1000  # spans all three files
    reader = ph.record_batch_reader(glob_url, "PartType0", columns=["HaloID", "Masses"], rows=(a, b))
    con = duckdb.connect()
    con.register("gas", reader)
    got = con.sql(
        "SELECT HaloID, count(*) AS n, sum(Masses::DOUBLE) AS m FROM gas GROUP BY HaloID ORDER BY HaloID"
    ).fetchall()
    halo = gas.columns["HaloID"][a:b]
    mass = gas.columns["Masses"][a:b].astype(np.float64)
    ids, counts = np.unique(halo, return_counts=True)
    sums = np.array([mass[halo == i].sum() for i in ids])
    assert [r[0] for r in got] == ids.tolist()
    assert [r[1] for r in got] == counts.tolist()
    np.testing.assert_allclose([r[2] for r in got], sums, rtol=1e-12)
