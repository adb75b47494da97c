"""Every output that pp and tl write round-trips through ``.h5ad`` and ``.h5mu`` (issue 13).

Each case runs one public function on a small simulated AnnData, or on a MuData holding it, writes the
result to a file of each format and reads it back: the fields read back are exactly the fields held before
writing (index, every column of obs / var, obsm, varm, obsp, varp, layers, ``X`` and each leaf of ``uns``,
of every modality and of the MuData itself), with equal values and dtypes. A function that returns a new
AnnData has that AnnData round-tripped (inside a MuData for ``.h5mu``); a function that takes only an
AnnData has its AnnData written as a MuData's modality for ``.h5mu``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scfanpy as sfp

md = pytest.importorskip("mudata")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")

TFS = ["GATA1", "SPI1", "CTCF"]


# ------------------------------------------------------------------------------------ comparing fields
def _flat_uns(d: Any, path: tuple, out: dict) -> None:
    for k, v in d.items():
        if isinstance(v, dict) or (hasattr(v, "items") and not isinstance(v, pd.DataFrame | pd.Series)):
            if not v:
                out[(*path, k)] = {}
            _flat_uns(v, (*path, k), out)
        else:
            out[(*path, k)] = v


def _flat(x: Any, prefix: tuple = ()) -> dict[tuple, Any]:
    """Every stored field of an AnnData or MuData as ``{path: value}`` (``uns`` down to its leaves)."""
    out: dict[tuple, Any] = {}
    if isinstance(x, md.MuData):
        for name, m in x.mod.items():
            out.update(_flat(m, (*prefix, "mod", name)))
        attrs = ("obs", "var", "obsm", "varm", "obsp", "varp", "uns")
    else:
        out[(*prefix, "X")] = x.X
        attrs = ("obs", "var", "obsm", "varm", "obsp", "varp", "layers", "uns")
    for attr in attrs:
        store = getattr(x, attr)
        if attr in ("obs", "var"):
            out[(*prefix, attr, "<index>")] = store.index
            out.update({(*prefix, attr, c): store[c] for c in store.columns})
        elif attr == "uns":
            _flat_uns(store, (*prefix, "uns"), out)
        else:
            out.update({(*prefix, attr, k): store[k] for k in store.keys()})
    return out


def _plain(s: pd.Series | pd.Index) -> pd.Series | pd.Index:
    """Strings as categoricals and as plain strings compare equal (anndata stores string columns as
    categoricals, its documented behaviour); every other dtype must come back as it was."""
    if isinstance(s.dtype, pd.CategoricalDtype) and s.dtype.categories.dtype == object:
        return s.astype(object)
    return s


def _assert_same(a: Any, b: Any, where: tuple) -> None:
    msg = f"{'/'.join(map(str, where))}: not read back as written"
    if a is None or b is None:
        assert a is None and b is None, msg
    elif isinstance(a, pd.DataFrame):
        assert isinstance(b, pd.DataFrame), msg
        pd.testing.assert_frame_equal(a.apply(_plain), b.apply(_plain), obj=msg)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(_plain(a), _plain(b), obj=msg)
    elif isinstance(a, pd.Index):
        pd.testing.assert_index_equal(a, b, obj=msg)
    elif sp.issparse(a):
        assert sp.issparse(b) and a.format == b.format and a.dtype == b.dtype and a.shape == b.shape, msg
        assert (a != b).nnz == 0, msg
    elif isinstance(a, np.ndarray) and a.dtype.names:  # scanpy's record arrays: NaN equal, field by field
        assert isinstance(b, np.ndarray) and a.dtype.names == b.dtype.names, msg
        for f in a.dtype.names:
            _assert_same(np.asarray(a[f]), np.asarray(b[f]), (*where, f))
    elif isinstance(a, np.ndarray) and a.dtype != object:
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, f"{msg} ({a.dtype} -> {type(b)})"
        np.testing.assert_array_equal(a, b, err_msg=msg)
    elif isinstance(a, list | tuple | np.ndarray):  # lists come back as arrays
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=msg)
    elif isinstance(a, dict):
        assert a == {} and len(b) == 0, msg
    else:
        assert type(b) is type(a) or np.asarray(a).dtype.kind == np.asarray(b).dtype.kind, msg
        assert a == b or (a != a and b != b), f"{msg}: {a!r} -> {b!r}"


# ------------------------------------------------------------------------------------ inputs
class Inputs:
    """The small inputs of every case, built on first use and shared by the module (read-only)."""

    @cached_property
    def sim(self):
        sim = sfp.datasets.simulate_scatac(n_cells=150, n_peaks=300, random_state=3)
        return sim.adata, sfp.Genome(sim.genome)

    @cached_property
    def with_sequences(self) -> ad.AnnData:
        a = self.sim[0].copy()
        sfp.pp.add_sequences(a, self.sim[1], width=100)
        return a

    @cached_property
    def scored(self) -> ad.AnnData:
        a = self.sim[0].copy()
        sfp.tl.predict_tf_binding(a, genome=self.sim[1], tfs=TFS, verbose=False)
        return a

    @cached_property
    def windows(self) -> ad.AnnData:
        adata, genome = self.sim
        v = adata.var
        peaks = {"A": v.iloc[::3][["chr", "start", "end"]], "B": v.iloc[1::4][["chr", "start", "end"]]}
        return sfp.pp.make_training_windows(
            genome,
            peaks,
            bin_size=200,
            stride=100,
            context=400,
            accessibility={"atac": v[["chr", "start", "end"]]},
            valid_chroms=[],
            test_chroms=["chr2"],
            random_state=0,
        )

    @cached_property
    def seq_model(self):
        regions = self.windows.copy()
        sfp.models.SCFAN.setup_anndata(regions)
        torch.manual_seed(0)
        return sfp.models.SCFAN(regions, channels=(4, 4, 4), pool=2, n_dense=4), regions

    @cached_property
    def track_model(self):
        """An untrained SCFAN with an accessibility track (its (peak, level) table is stored)."""
        torch.manual_seed(0)
        return sfp.models.SCFAN(
            tf_names=TFS, window=200, n_tracks=1, track_names=["accessibility"], channels=(4, 4, 4), n_dense=4
        )

    @cached_property
    def rna(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(120, 3)) @ rng.normal(size=(3, 30)) + 0.1 * rng.normal(size=(120, 30))
        genes = [f"lm{i}" for i in range(10)] + [f"tg{i}" for i in range(20)]
        a = ad.AnnData(x.astype(np.float32), var=pd.DataFrame(index=genes))
        a.obs_names = [f"c{i}" for i in range(a.n_obs)]
        sfp.models.LinearLandmarkRegressor.setup_anndata(a, landmarks=genes[:10])
        model = sfp.models.LinearLandmarkRegressor(a)
        model.train()
        return a, model


@pytest.fixture(scope="module")
def inputs(data_cache):
    return Inputs()


# ------------------------------------------------------------------------------------ the cases
@dataclass(frozen=True)
class Case:
    """``prepare(inputs)`` -> the AnnData to work on; ``run(inputs, data, mod)`` calls the function
    (``mod``: the modality name for a MuData, else None) and returns a new AnnData it made, or None.
    ``expect``: fields (paths below the AnnData, prefixes of ``uns`` paths) that must have been written."""

    prepare: Callable[[Inputs], ad.AnnData]
    run: Callable[[Inputs, Any, str | None], ad.AnnData | None]
    expect: tuple[tuple, ...]
    mod: str = "atac"
    takes_mudata: bool = True
    expect_mudata: tuple[tuple, ...] = field(default=())


def _no_coordinates(i: Inputs) -> ad.AnnData:
    a = i.sim[0].copy()
    a.var = a.var.drop(columns=["chr", "start", "end"])
    return a


def _kw(mod: str | None) -> dict:
    return {} if mod is None else {"mod": mod}


CASES = {
    "pp.parse_peaks": Case(
        _no_coordinates,
        lambda i, d, mod: sfp.pp.parse_peaks(d, **_kw(mod)),
        (("var", "chr"), ("var", "start"), ("var", "end")),
    ),
    "pp.add_sequences": Case(
        lambda i: i.sim[0].copy(),
        lambda i, d, mod: sfp.pp.add_sequences(d, i.sim[1], width=200, **_kw(mod)),
        (("varm", "dna_code"), ("uns", "scfanpy", "genome")),
    ),
    "pp.smooth": Case(
        lambda i: i.sim[0].copy(),
        lambda i, d, mod: sfp.pp.smooth(d, n_neighbors=10, **_kw(mod)),
        (("layers", "smoothed"), ("obs", "smoothed_depth"), ("obsm", "X_lsi"), ("uns", "smoothed", "params")),
    ),
    "tl.predict_tf_binding": Case(
        lambda i: i.sim[0].copy(),
        lambda i, d, mod: sfp.tl.predict_tf_binding(d, genome=i.sim[1], tfs=TFS, verbose=False, **_kw(mod)),
        (
            ("varm", "tf_binding"),
            ("varm", "dna_code"),
            ("varm", "tf_activity_background_peaks"),
            ("obsm", "tf_activity"),
            ("obsm", "tf_activity_deviation"),
            ("obsm", "tf_activity_raw"),
            ("obsm", "X_tf"),
            ("obs", "tf_activity_empty"),
            ("var", "gc_content"),
            ("var", "n_fraction"),
            ("var", "usable_sequence"),
            ("layers", "smoothed"),
            ("uns", "tf_activity", "params"),
            ("uns", "tf_activity", "archetypes"),
            ("uns", "tf_activity", "tf_names"),
            ("uns", "tf_activity", "model"),
            ("uns", "tf_activity", "levels"),
            ("uns", "tf_activity", "background"),
        ),
        expect_mudata=(("mod", "tf", "X"),),
    ),
    "tl.predict_tf_binding(track model, scfan)": Case(
        lambda i: i.sim[0][:60, :80].copy(),
        lambda i, d, mod: sfp.tl.predict_tf_binding(
            d,
            model=i.track_model,
            genome=i.sim[1],
            method="scfan",
            n_levels=4,
            correct_bias=False,
            verbose=False,
            **_kw(mod),
        ),
        (
            ("varm", "tf_binding"),
            ("varm", "tf_binding_levels"),
            ("obsm", "tf_activity"),
            ("uns", "tf_activity"),
        ),
    ),
    "tl.rank_tfs": Case(
        lambda i: i.scored.copy(),
        lambda i, d, mod: sfp.tl.rank_tfs(d, "cell_type", **_kw(mod)),
        (("uns", "rank_tfs", "names"), ("uns", "rank_tfs", "effect"), ("uns", "rank_tfs", "params")),
    ),
    "tl.tf_activity_adata": Case(
        lambda i: i.scored.copy(),
        lambda i, d, mod: sfp.tl.tf_activity_adata(d, scale=True, obsm_keys=["X_tf"], **_kw(mod)),
        (("X",), ("layers", "activity"), ("obsm", "X_tf"), ("obs", "cell_type"), ("uns", "activity_in_X")),
    ),
    "tl.sailer": Case(
        lambda i: i.sim[0].copy(),
        lambda i, d, mod: sfp.tl.sailer(d, max_epochs=1, accelerator="cpu", n_latent=4, **_kw(mod)),
        (("obsm", "X_sailer"), ("obs", "sailer_depth"), ("uns", "sailer", "params")),
        expect_mudata=(("obsm", "X_sailer"),),
    ),
    "tl.impute_from_landmarks(layer)": Case(
        lambda i: i.rna[0].copy(),
        lambda i, d, mod: sfp.tl.impute_from_landmarks(d, i.rna[1], **_kw(mod)),
        (("layers", "imputed"), ("var", "imputed"), ("uns", "imputed", "params")),
        mod="rna",
    ),
    "tl.impute_from_landmarks(panel)": Case(
        lambda i: i.rna[0][:, :10].copy(),
        lambda i, d, mod: sfp.tl.impute_from_landmarks(d, i.rna[1], genes=["tg3", "tg0"], **_kw(mod)),
        (("X",), ("var", "landmark"), ("var", "imputed"), ("uns", "imputed", "params")),
        mod="rna",
    ),
    "tl.attribution": Case(
        lambda i: i.with_sequences.copy(),
        lambda i, d, mod: sfp.tl.attribution(
            sfp.models.MotifModel(TFS[:2]), d, peaks=list(range(6)), method="ism", **_kw(mod)
        ),
        (("uns", "attribution"),),
    ),
    "pp.make_training_windows": Case(
        lambda i: None,
        lambda i, d, mod: i.windows.copy(),
        (
            ("obs", "chr"),
            ("obs", "split"),
            ("obs", "n_bound"),
            ("obsm", "dna_code"),
            ("obsm", "labels"),
            ("obsm", "signal"),
            ("uns", "tf_names"),
            ("uns", "signal_names"),
            ("uns", "scfanpy", "genome"),
            ("uns", "training_windows", "params"),
        ),
        takes_mudata=False,
    ),
    "tl.roc_pr": Case(
        lambda i: i.seq_model[1].copy(),
        lambda i, d, mod: sfp.tl.roc_pr(i.seq_model[0], d, split="test"),
        (("uns", "roc_pr", "metrics"), ("uns", "roc_pr", "curves"), ("uns", "roc_pr", "params")),
        mod="regions",
        takes_mudata=False,
    ),
}


def _pulled(key: tuple, fields: dict) -> bool:
    """Whether ``key`` is a MuData's global obs / var column that mudata fills from a modality's column on
    reading (the file keeps only the global columns of its own: its legacy ``update()``)."""
    if len(key) != 2 or key[0] not in ("obs", "var"):
        return False
    mod, _, col = key[1].rpartition(":")
    return any(k[0] == "mod" and (not mod or k[1] == mod) and k[2:] == (key[0], col) for k in fields)


def _written(before: dict, after: dict) -> set:
    return {k for k in after if k not in before}


def _covers(keys: set, want: tuple) -> bool:
    return any(k[: len(want)] == want for k in keys)


@pytest.mark.parametrize("fmt", ["h5ad", "h5mu"])
@pytest.mark.parametrize("name", list(CASES))
def test_outputs_round_trip(name, fmt, inputs, tmp_path):
    sub, func = name.split("(")[0].split(".")
    if func not in getattr(sfp, sub).__all__:
        pytest.skip(f"{name} is not (yet) public")
    case = CASES[name]
    adata = case.prepare(inputs)
    as_mudata = fmt == "h5mu" and case.takes_mudata and adata is not None
    data = md.MuData({case.mod: adata}) if as_mudata else adata
    before = {} if data is None else _flat(data)
    new = case.run(inputs, data, case.mod if as_mudata else None)
    target = data if new is None else new
    if fmt == "h5mu" and not isinstance(target, md.MuData):
        target = md.MuData({case.mod: target})
        before = {}
    after = _flat(target)
    written = _written(before, after) if new is None else set(after)
    where = ("mod", case.mod) if isinstance(target, md.MuData) else ()
    missing = [w for w in case.expect if not _covers(written, (*where, *w))]
    if fmt == "h5mu" and new is None:
        missing += [w for w in case.expect_mudata if not _covers(written, w)]
    assert not missing, f"{name} did not write {missing}"

    path = tmp_path / f"out.{fmt}"
    if fmt == "h5ad":
        target.write_h5ad(path)
        back = _flat(ad.read_h5ad(path))
    else:
        target.write(path)
        back = _flat(md.read_h5mu(path))
    lost = set(after) - set(back)
    gained = {k for k in set(back) - set(after) if not _pulled(k, after)}
    assert not lost and not gained, (
        f"{name}: fields lost {sorted(lost, key=str)}, gained {sorted(gained, key=str)}"
    )
    for k in sorted(after, key=str):
        _assert_same(after[k], back[k], k)


#: public pp / tl functions that write nothing into an AnnData (they return arrays, tables or strings)
RETURN_ONLY = {
    "pp.dinucleotide_shuffle",
    "pp.lsi",
    "pp.one_hot",
    "tl.cell_tf_binding",
    "tl.filter_motifs",
    "tl.motif_archetypes",
    "tl.motif_similarity",
    "tl.top_tfs",
    "tl.model_motifs",
    "tl.variant_effects",
    "tl.Attribution",  # the result class of tl.attribution, not a function
}


def test_every_writing_function_has_a_case():
    """A new public pp / tl function is either round-tripped above or listed as writing nothing."""
    public = {f"{sub}.{n}" for sub in ("pp", "tl") for n in getattr(sfp, sub).__all__}
    covered = {name.split("(")[0] for name in CASES}
    assert not public - RETURN_ONLY - covered, sorted(public - RETURN_ONLY - covered)
