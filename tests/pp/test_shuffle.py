import itertools
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from scfanpy.pp import dinucleotide_shuffle


def _dinucs(s):
    return Counter(s[i : i + 2] for i in range(len(s) - 1))


def test_counts_preserved_string_and_codes():
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = "".join(rng.choice(list("ACGTN"), size=int(rng.integers(3, 60)), p=[0.3, 0.2, 0.2, 0.25, 0.05]))
        out = dinucleotide_shuffle(s, rng)
        assert _dinucs(out) == _dinucs(s)
        assert out[0] == s[0] and out[-1] == s[-1]
    codes = rng.integers(0, 5, size=(20, 101)).astype(np.uint8)
    sh = dinucleotide_shuffle(codes, random_state=1)
    assert sh.dtype == np.uint8 and sh.shape == codes.shape
    for a, b in zip(codes, sh, strict=True):
        pa = Counter(zip(a[:-1].tolist(), a[1:].tolist(), strict=True))
        pb = Counter(zip(b[:-1].tolist(), b[1:].tolist(), strict=True))
        assert pa == pb
    # actually shuffled
    assert (sh != codes).mean() > 0.3


def test_uniform_over_all_valid_sequences():
    s = "AACAGCATGA"
    valid = {"".join(p) for p in set(itertools.permutations(s))}
    valid = {p for p in valid if p[0] == s[0] and _dinucs(p) == _dinucs(s)}
    rng = np.random.default_rng(42)
    n = 200 * len(valid)
    seen = Counter(dinucleotide_shuffle(s, rng) for _ in range(n))
    assert set(seen) == valid
    obs = np.array([seen[v] for v in sorted(valid)])
    assert stats.chisquare(obs).pvalue > 1e-3


def test_types_and_short_inputs():
    assert dinucleotide_shuffle("AC", random_state=0) == "AC"
    assert dinucleotide_shuffle("", random_state=0) == ""
    out = dinucleotide_shuffle(["ACGTAC", "acgtt"], random_state=0)
    assert isinstance(out, list) and _dinucs(out[1]) == _dinucs("ACGTT")
    a = dinucleotide_shuffle("ACGTACGGTTACA" * 3, random_state=5)
    assert a == dinucleotide_shuffle("ACGTACGGTTACA" * 3, random_state=5)
    with pytest.raises(TypeError):
        dinucleotide_shuffle(3)


def test_letters_outside_acgtn_one_warning_per_call():
    import warnings

    seqs = ["ACGRYTTACG", "ACGTTGCA", "AC-GT1GTA"] * 50
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = dinucleotide_shuffle(seqs, random_state=0)
    assert len(rec) == 1 and rec[0].category is UserWarning
    msg = str(rec[0].message)
    assert "200 character(s) outside ACGTN in 100 sequence(s)" in msg and "read as N" in msg
    assert rec[0].filename == __file__  # points at the caller, not at scfanpy
    assert _dinucs(out[0]) == _dinucs("ACGNNTTACG")
    with pytest.warns(UserWarning, match=r"^2 character\(s\) outside ACGTN \(e\.g\. 'R', 'Y'"):
        assert dinucleotide_shuffle("ACGRYTTACG", random_state=0).count("N") == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dinucleotide_shuffle(["ACGTN", "acgtn"], random_state=0)  # ACGTN in any case: silent
