"""Motif similarity and archetypes (tl/_archetypes.py) on known cases and on JASPAR families."""

from __future__ import annotations

import numpy as np
import pytest

from scfanpy.tl._archetypes import motif_archetypes, motif_similarity


def _pwm(seq: str, p: float = 0.85) -> np.ndarray:
    m = np.full((len(seq), 4), (1 - p) / 3)
    for i, b in enumerate(seq):
        m[i, "ACGT".index(b)] = p
    return m


def test_similarity_is_offset_and_strand_aware():
    motifs = {
        "a": _pwm("TTGATAAGGC"),
        "a_shift": _pwm("CCTTGATAAG"),  # the same core, shifted by two
        "a_rc": _pwm("TTGATAAGGC")[::-1, ::-1],  # reverse complement
        "b": _pwm("CACGTGACCA"),
    }
    s = motif_similarity(motifs)
    assert s.loc["a", "a_rc"] == pytest.approx(1.0)
    assert s.loc["a", "a_shift"] > 0.7
    assert s.loc["a", "b"] < 0.5
    np.testing.assert_allclose(s.to_numpy(), s.to_numpy().T)
    arch = motif_archetypes(motifs, threshold=0.7)
    assert arch["a"] == arch["a_rc"] == arch["a_shift"] != arch["b"]


def test_jaspar_families(data_cache):
    import scfanpy as sfp

    names = ["GATA1", "GATA2", "Gata3", "CEBPA", "CEBPB", "CEBPE", "KLF4", "SP1", "FOSL2", "FOS::JUN", "CTCF"]
    motifs = {k: v for k, v in sfp.datasets.jaspar_motifs().items() if k in names}
    assert set(motifs) == set(names)
    arch = motif_archetypes(motifs)
    assert arch["GATA1"] == arch["GATA2"] == arch["Gata3"]
    assert arch["CEBPA"] == arch["CEBPB"] == arch["CEBPE"]
    assert arch["KLF4"] == arch["SP1"]
    assert arch["FOSL2"] == arch["FOS::JUN"]
    families = [arch[k] for k in ("GATA1", "CEBPA", "KLF4", "FOSL2", "CTCF")]
    assert len(set(families)) == 5
