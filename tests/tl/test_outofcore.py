"""Out of core: predict_tf_binding and pp.smooth on a backed AnnData and on a dask X, chunked memory,
and per-cell scoring as dask tasks on a dask.distributed LocalCluster."""

from __future__ import annotations

import gc
import tracemalloc

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scfanpy as sfp

da = pytest.importorskip("dask.array")

KEYS = ("tf_activity", "tf_activity_deviation", "tf_activity_raw", "X_tf")


@pytest.fixture(scope="module")
def small(data_cache, tmp_path_factory):
    """300 cells x 400 peaks with sequences, 4 TFs, written to an .h5ad (sparse X)."""
    sim = sfp.datasets.simulate_scatac(n_cells=300, n_peaks=400, random_state=0)
    a, truth = sim.adata, sim.truth
    a.X = sp.csr_matrix(a.X, dtype=np.float32)
    a.X[:3] = 0  # cells without counts
    a.X.eliminate_zeros()
    sfp.pp.add_sequences(a, sfp.Genome(sim.genome), width=300)
    path = tmp_path_factory.mktemp("ooc") / "small.h5ad"
    a.write_h5ad(path)
    return a, path, list(truth.tfs[:4])


def _lazy(a: ad.AnnData, f: h5py.File, chunk: int) -> ad.AnnData:
    """An AnnData whose X is anndata's lazy dask array over the file (obs, var, varm in memory)."""
    X = ad.experimental.read_elem_lazy(f["X"], chunks=(chunk, a.n_vars))
    return ad.AnnData(X=X, obs=a.obs.copy(), var=a.var.copy(), varm={"dna_code": a.varm["dna_code"]})


def _same(got: ad.AnnData, ref: ad.AnnData, atol=1e-6):
    for k in KEYS:
        if k in ref.obsm:
            np.testing.assert_allclose(np.asarray(got.obsm[k]), np.asarray(ref.obsm[k]), atol=atol, rtol=0)
    np.testing.assert_array_equal(got.obs["tf_activity_empty"], ref.obs["tf_activity_empty"])
    np.testing.assert_allclose(got.varm["tf_binding"], ref.varm["tf_binding"], atol=atol)
    if "tf_activity_background_peaks" in ref.varm:
        np.testing.assert_array_equal(
            got.varm["tf_activity_background_peaks"], ref.varm["tf_activity_background_peaks"]
        )


@pytest.mark.parametrize("correct_bias", [True, False])
def test_backed_and_dask_equal_in_memory(small, correct_bias):
    a, path, tfs = small
    kw = {"tfs": tfs, "smooth": False, "correct_bias": correct_bias, "verbose": False, "chunk_size": 64}
    ref = sfp.tl.predict_tf_binding(a, copy=True, **kw)
    assert ref.obs["tf_activity_empty"].sum() == 3
    backed = ad.read_h5ad(path, backed="r")
    sfp.tl.predict_tf_binding(backed, **kw)  # results go to the in-memory parts (obsm, varm, uns, obs)
    assert backed.isbacked
    _same(backed, ref)
    with h5py.File(path, "r") as f:
        lazy = _lazy(a, f, 100)  # dask chunks of 100 cells, rechunked to chunk_size
        sfp.tl.predict_tf_binding(lazy, **kw)
        assert isinstance(lazy.X, da.Array)
    _same(lazy, ref)


def test_default_path_smooths_a_dask_x(small, tmp_path):
    """smooth=True on a dask X: the smoothed layer in memory, the counts (X) still read by chunks."""
    a, path, tfs = small
    ref = sfp.tl.predict_tf_binding(a, tfs=tfs, verbose=False, copy=True)
    with h5py.File(path, "r") as f:
        lazy = _lazy(a, f, 128)
        sfp.tl.predict_tf_binding(lazy, tfs=tfs, verbose=False, chunk_size=100)
        np.testing.assert_allclose(lazy.layers["smoothed"].toarray(), ref.layers["smoothed"].toarray())
    _same(lazy, ref, atol=1e-5)
    # a backed file's results written by write_h5ad (X copied from the file)
    backed = ad.read_h5ad(path, backed="r")
    sfp.tl.predict_tf_binding(backed, tfs=tfs, verbose=False, chunk_size=100)
    backed.write_h5ad(tmp_path / "scored.h5ad")
    back = ad.read_h5ad(tmp_path / "scored.h5ad")
    _same(back, ref, atol=1e-5)


def test_bad_values_in_a_lazy_x_are_refused_before_writing(small, tmp_path):
    a, _, tfs = small
    b = a.copy()
    b.X = b.X.tocsr(copy=True)
    b.X.data[5] = -1.0
    X = da.from_array(b.X, chunks=(50, b.n_vars), asarray=False)
    lazy = ad.AnnData(X=X, obs=b.obs, var=b.var, varm={"dna_code": b.varm["dna_code"]})
    with pytest.raises(ValueError, match="negative"):
        sfp.tl.predict_tf_binding(lazy, tfs=tfs, smooth=False, verbose=False, chunk_size=64)
    assert "tf_activity" not in lazy.obsm and "tf_binding" not in lazy.varm


def test_smooth_on_dask_x_equals_in_memory(small):
    a, path, _ = small
    ref = sfp.pp.smooth(a, n_neighbors=15, copy=True)
    with h5py.File(path, "r") as f:
        lazy = _lazy(a, f, 70)
        sfp.pp.smooth(lazy, n_neighbors=15)
    np.testing.assert_array_equal(lazy.layers["smoothed"].toarray(), ref.layers["smoothed"].toarray())
    np.testing.assert_array_equal(lazy.obs["smoothed_depth"], ref.obs["smoothed_depth"])


# ------------------------------------------------------------------------------------------ memory
def _random_dask(n_cells: int, n_peaks: int, density: float, chunk: int):
    """A lazy random count matrix: each block of cells made when a task asks for it."""
    import dask

    def block(i, n):
        rng = np.random.default_rng(i)
        m = sp.random(n, n_peaks, density=density, format="csr", dtype=np.float32, random_state=rng)
        m.data = np.ceil(m.data * 3)
        return m

    meta = sp.csr_matrix((0, n_peaks), dtype=np.float32)
    parts = []
    for i, lo in enumerate(range(0, n_cells, chunk)):
        n = min(chunk, n_cells - lo)
        parts.append(
            da.from_delayed(dask.delayed(block)(i, n), shape=(n, n_peaks), dtype=np.float32, meta=meta)
        )
    return da.concatenate(parts, axis=0)


def _peak_memory(n_cells: int, codes: np.ndarray, tfs) -> float:
    """tracemalloc peak (MB) of predict_tf_binding on a lazy random X, one chunk at a time."""
    import dask

    n_peaks = len(codes)
    X = _random_dask(n_cells, n_peaks, 0.05, 2_000)
    a = ad.AnnData(
        X=X,
        obs=pd.DataFrame(index=pd.RangeIndex(n_cells).astype(str)),
        var=pd.DataFrame(index=pd.RangeIndex(n_peaks).astype(str)),
        varm={"dna_code": codes},
    )
    gc.collect()
    with dask.config.set(scheduler="synchronous"):  # one chunk at a time: the bound per chunk
        tracemalloc.start()
        sfp.tl.predict_tf_binding(
            a, tfs=tfs, smooth=False, n_background=10, chunk_size=2_000, tf_neighbors=0, verbose=False
        )
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert a.obsm["tf_activity"].shape == (n_cells, len(tfs))
    return peak / 2**20


def test_peak_memory_does_not_grow_with_cells(small):
    """tracemalloc peak while scoring 10,000 and 40,000 cells x 2,000 peaks (5% non-zero) in chunks of
    2,000 cells, above the peak of a one-chunk run (the motif model and the per-peak arrays): the
    40,000-cell matrix (32 MB as float32 CSR, 48 MB as float64) is never held. ``tf_neighbors=0``: the
    neighbour search of the pooled ``X_tf`` holds (cells x 10) indices, O(cells) by nature; its lazy
    reads are checked against the in-memory result above."""
    a, _, tfs = small
    codes = np.tile(np.asarray(a.varm["dna_code"]), (5, 1))
    _peak_memory(500, codes, tfs[:3])  # first-call costs (imports, caches) out of the way
    base = _peak_memory(2_000, codes, tfs[:3])  # one chunk
    small_, large = (_peak_memory(n, codes, tfs[:3]) - base for n in (10_000, 40_000))
    full_csr_40k = 40_000 * 2_000 * 0.05 * 8 / 2**20  # float32 data + int32 indices
    assert large < 1.5 * max(small_, 0) + 3, (base, small_, large)
    assert large < 0.25 * full_csr_40k, (base, small_, large, full_csr_40k)


# ------------------------------------------------------------------------------------- distributed
@pytest.mark.parametrize(
    ("processes", "background"), [(False, "sampled"), (True, "sampled"), (True, "expected")]
)
def test_local_cluster_equals_in_memory(small, processes, background):
    distributed = pytest.importorskip("distributed")
    a, path, tfs = small
    kw = {"tfs": tfs, "smooth": False, "verbose": False, "chunk_size": 64, "background": background}
    ref = sfp.tl.predict_tf_binding(a, copy=True, **kw)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        X = da.from_array(a.X, chunks=(64, a.n_vars), asarray=False)  # sparse blocks, shipped to workers
        lazy = ad.AnnData(X=X, obs=a.obs.copy(), var=a.var.copy(), varm={"dna_code": a.varm["dna_code"]})
        with distributed.get_task_stream(client) as stream:
            sfp.tl.predict_tf_binding(lazy, **kw)
        assert len(client.scheduler_info()["workers"]) == 2
    ran = [str(t["key"]) for t in stream.data]
    assert sum("_cell_kernel" in k for k in ran) == 5  # one task per chunk of 64 cells, on the workers
    assert any("_stats_kernel" in k for k in ran)
    _same(lazy, ref, atol=1e-5)


def test_keep_only_z_same_values_less_memory(small):
    """store_raw=False, store_deviation=False: the z-scores and X_tf are those of the full run, the two
    other (cells, TFs) outputs are neither kept nor left over from an earlier run, and the traced peak
    falls by about the two arrays it no longer holds."""
    a, _, tfs = small
    codes = np.tile(np.asarray(a.varm["dna_code"]), (5, 1))
    kw = {"tfs": tfs, "smooth": False, "verbose": False, "chunk_size": 64}
    ref = sfp.tl.predict_tf_binding(a, copy=True, **kw)
    got = ref.copy()  # holds the earlier run's raw and deviation keys
    sfp.tl.predict_tf_binding(got, store_raw=False, store_deviation=False, **kw)
    assert "tf_activity_raw" not in got.obsm and "tf_activity_deviation" not in got.obsm
    np.testing.assert_array_equal(np.asarray(got.obsm["tf_activity"]), np.asarray(ref.obsm["tf_activity"]))
    np.testing.assert_allclose(got.obsm["X_tf"], ref.obsm["X_tf"], atol=1e-5)
    np.testing.assert_array_equal(got.obs["tf_activity_empty"], ref.obs["tf_activity_empty"])
    # without the correction the uncorrected score is the activity: kept whatever store_raw says
    plain = sfp.tl.predict_tf_binding(a, copy=True, correct_bias=False, store_raw=False, **kw)
    assert plain.obsm["tf_activity"].shape == (a.n_obs, len(tfs))
    assert np.isfinite(np.asarray(plain.obsm["tf_activity"])[~plain.obs["tf_activity_empty"]]).all()

    many = list(sfp.datasets.jaspar_motifs())[:60]  # enough TFs for the outputs to set the peak

    def peak(**store) -> float:
        n_cells = 40_000
        X = _random_dask(n_cells, len(codes), 0.01, 4_000)
        b = ad.AnnData(
            X=X,
            obs=pd.DataFrame(index=pd.RangeIndex(n_cells).astype(str)),
            var=pd.DataFrame(index=pd.RangeIndex(len(codes)).astype(str)),
            varm={"dna_code": codes},
        )
        import dask

        gc.collect()
        with dask.config.set(scheduler="synchronous"):
            tracemalloc.start()
            sfp.tl.predict_tf_binding(
                b, tfs=many, smooth=False, n_background=5, chunk_size=4_000, verbose=False, **store
            )
            out = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return out / 2**20

    two_arrays = 2 * 40_000 * len(many) * 4 / 2**20  # 18 MB
    peak(store_raw=False, store_deviation=False)  # first-call costs (motif model, caches) out of the way
    full, only_z = peak(), peak(store_raw=False, store_deviation=False)
    print(f"traced peak {full:.1f} MB, only z {only_z:.1f} MB, two arrays {two_arrays:.1f} MB")
    assert full - only_z > 0.8 * two_arrays, (full, only_z, two_arrays)


def test_expected_background_one_call(small, tmp_path):
    """background='expected': z-scores close to the sampled ones (50 sets), no draws written, the same
    result backed and with a dask X as in memory, and the key of an earlier sampled run removed."""
    a, path, tfs = small
    kw = {"tfs": tfs, "smooth": False, "verbose": False, "chunk_size": 64}
    sampled = sfp.tl.predict_tf_binding(a, copy=True, **kw)
    exp = sampled.copy()
    sfp.tl.predict_tf_binding(exp, background="expected", **kw)
    assert "tf_activity_background_peaks" not in exp.varm
    params = exp.uns["tf_activity"]["params"]
    assert params["background"] == "expected" and params["n_background"] == 0
    zs, ze = np.asarray(sampled.obsm["tf_activity"]), np.asarray(exp.obsm["tf_activity"])
    np.testing.assert_array_equal(np.isnan(zs), np.isnan(ze))
    ok = np.isfinite(zs)
    assert np.corrcoef(zs[ok], ze[ok])[0, 1] > 0.95
    np.testing.assert_allclose(
        np.asarray(exp.obsm["tf_activity_raw"]), np.asarray(sampled.obsm["tf_activity_raw"]), atol=1e-6
    )
    backed = ad.read_h5ad(path, backed="r")
    sfp.tl.predict_tf_binding(backed, background="expected", **kw)
    _same(backed, exp)
    with h5py.File(path, "r") as f:
        lazy = _lazy(a, f, 100)
        sfp.tl.predict_tf_binding(lazy, background="expected", **kw)
    _same(lazy, exp)
    with pytest.raises(ValueError, match="background must be"):
        sfp.tl.predict_tf_binding(a, background="exact", copy=True, **kw)
