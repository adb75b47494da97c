"""Test setup: the data cache is seeded from the project's shared/data mirror when it exists.

The loaders then run offline on the very bytes their pooch registry pins (sha256 is checked); on a
machine without the mirror they download from the upstream URLs instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCFANPY_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory):
    import scfanpy as sfp

    cache = tmp_path_factory.mktemp("scfanpy_data")
    os.environ["SCFANPY_DATA_DIR"] = str(cache)
    sfp.datasets.set_cache_dir(cache)
    if SHARED.is_dir():
        sfp.datasets.seed_cache(SHARED)
    yield cache
    sfp.datasets.set_cache_dir(None)


@pytest.fixture(scope="session", autouse=True)
def skip_when_data_unreachable():
    """A test whose data file is neither cached, nor in a local mirror, nor downloadable is skipped (with
    the file and the reason), not failed: the README test command passes offline without a mirror."""
    import pooch
    import requests

    def guard(orig):
        def wrapped(*args, **kwargs):
            try:
                return orig(*args, **kwargs)
            except (requests.exceptions.RequestException, ConnectionError, TimeoutError) as e:
                what = next((a for a in args if isinstance(a, str)), kwargs.get("url", "a data file"))
                pytest.skip(
                    f"{what}: not cached, no local mirror, and the download failed ({type(e).__name__})"
                )

        return wrapped

    mp = pytest.MonkeyPatch()
    mp.setattr(pooch.Pooch, "fetch", guard(pooch.Pooch.fetch))
    mp.setattr(pooch, "retrieve", guard(pooch.retrieve))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("shared/data mirror not present")
    return SHARED


def _simulate(**kwargs):
    """``simulate_scatac`` with its genome FASTA path opened as an :class:`scfanpy.Genome`."""
    import scfanpy as sfp

    sim = sfp.datasets.simulate_scatac(**kwargs)
    return sim._replace(genome=sfp.Genome(sim.genome))


@pytest.fixture(scope="session")
def sim_small(data_cache):
    """600 cells x 800 peaks, 4 cell types, 8 TFs, ``(adata, genome, truth)`` with an open Genome; read-only:
    copy before modifying."""
    return _simulate(n_cells=600, n_peaks=800, random_state=0)


@pytest.fixture(scope="session")
def sim_scored(sim_small):
    """``sim_small`` smoothed (k = 50) and scored with the JASPAR motif model: ``(adata, genome, truth)``.

    Shared by the tl tests; they add only ``uns['rank_tfs']`` to it; copy before changing anything else.
    """
    import scfanpy as sfp

    adata, genome, truth = sim_small
    a = adata.copy()
    sfp.pp.smooth(a, n_neighbors=50)
    sfp.tl.predict_tf_binding(a, genome=genome, tfs=truth.tfs, verbose=False)
    return a, genome, truth


@pytest.fixture(scope="session")
def sim_batches(data_cache):
    """800 cells x 1000 peaks with 2 batches and a wide depth spread (genome opened); read-only."""
    return _simulate(n_cells=800, n_peaks=1000, n_batches=2, depth_sd=0.8, random_state=1)


@pytest.fixture(scope="module")
def torch_one_thread():
    """One torch thread per test module: CI has 2 shared cores and OpenMP spinning costs more than it gains."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
