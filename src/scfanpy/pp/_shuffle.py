"""Exact dinucleotide shuffling (Altschul & Erikson 1985; Eulerian-path form of Kandel et al. 1996).

A sequence of length ``n`` is a walk of ``n - 1`` edges through the graph whose vertices are the letters
and whose (multi-)edges are its dinucleotides. A uniformly random Eulerian walk through that multigraph
with the same first letter is a uniformly random sequence with exactly the same dinucleotide counts (and
so the same letter counts, first and last letter). It is drawn in two steps: a random set of "last exits"
(one outgoing edge per vertex other than the final letter) that forms a tree directed at the final letter,
sampled by rejection; then a random order of each vertex's other exits, with its last exit placed last.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._docs import doc_params
from .._utils import check_random_state
from ..genome import _encode_counted, decode_sequence, warn_replaced

__all__ = ["dinucleotide_shuffle"]


def _shuffle_codes(s: np.ndarray, random_state: np.random.Generator) -> np.ndarray:
    """Shuffle one 1-D integer array preserving its dinucleotide (2-mer) counts exactly."""
    rng = random_state
    n = s.shape[0]
    if n <= 2:
        return s.copy()
    src, dst = s[:-1], s[1:]
    first, last = int(s[0]), int(s[-1])
    letters = np.unique(s)
    # exits[v] = list of successors of v, in sequence order
    order = np.argsort(src, kind="stable")
    src_sorted, dst_sorted = src[order], dst[order]
    bounds = (
        np.searchsorted(src_sorted, letters, side="left"),
        np.searchsorted(src_sorted, letters, side="right"),
    )
    exits = {int(v): dst_sorted[lo:hi].copy() for v, lo, hi in zip(letters, *bounds, strict=True)}
    # rejection-sample last exits until they form a tree rooted at `last`
    sources = [v for v in exits if v != last and len(exits[v])]
    while True:
        last_idx = {v: int(rng.integers(len(exits[v]))) for v in sources}
        nxt = {v: int(exits[v][last_idx[v]]) for v in sources}
        ok = True
        reaches = {last}
        for v in sources:
            path = []
            u = v
            while u not in reaches:
                if u in path:  # cycle avoiding the root
                    ok = False
                    break
                path.append(u)
                u = nxt[u]
            if not ok:
                break
            reaches.update(path)
        if ok:
            break
    # order each vertex's exits: the others in random order, the chosen last exit last
    for v in exits:
        e = exits[v]
        if v in last_idx:
            k = last_idx[v]
            keep = e[k]
            rest = np.delete(e, k)
            rng.shuffle(rest)
            exits[v] = np.append(rest, keep)
        else:
            rng.shuffle(e)
    out = np.empty_like(s)
    out[0] = first
    pos = dict.fromkeys(exits, 0)
    u = first
    for i in range(1, n):
        prev = u
        u = int(exits[prev][pos[prev]])
        pos[prev] += 1
        out[i] = u
    return out


def _shuffle_strings(seqs: Sequence[str], rng: np.random.Generator) -> list[str]:
    """Shuffled strings; one warning (at the caller of ``dinucleotide_shuffle``) for letters outside ACGTN."""
    out, n_bad, n_seqs, ex = [], 0, 0, b""
    for s in seqs:
        codes, nb, e = _encode_counted(s)
        if nb:
            n_bad, n_seqs, ex = n_bad + nb, n_seqs + 1, (ex + e)[:20]
        out.append(decode_sequence(_shuffle_codes(codes, rng)))
    warn_replaced(n_bad, ex, n_seqs if len(seqs) > 1 else None, stacklevel=4)
    return out


@doc_params()
def dinucleotide_shuffle(
    seq_or_codes: str | Sequence[str] | np.ndarray,
    random_state: int | np.random.Generator | None = None,
) -> str | list[str] | np.ndarray:
    """Shuffle DNA preserving its dinucleotide counts exactly (Altschul-Erikson, Eulerian walk).

    Every dinucleotide (including those with ``N``) occurs as often in the output as in the input, and
    the first and last letters are kept; among all such sequences the output is uniformly random. This
    is how DeepBind and BertSNR made their negative sequences.

    Parameters
    ----------
    seq_or_codes
        A sequence string, a list of strings, a 1-D array of codes (A=0 C=1 G=2 T=3 N=4), or a 2-D array
        ``(n, L)`` of codes whose rows are shuffled independently.
    {random_state}

    Returns
    -------
    shuffled : str or list of str or :class:`numpy.ndarray`
        The same kind of object as the input (string, list of strings, or array of the same dtype and
        shape). Strings come back upper case, with letters other than ``ACGT`` as ``N`` (one
        :class:`UserWarning` per call gives the number of characters outside ``ACGTN``).

    Examples
    --------
    >>> from scfanpy.pp import dinucleotide_shuffle
    >>> s = dinucleotide_shuffle("ACGTTGCAAACGT", random_state=0)
    >>> sorted(s[i : i + 2] for i in range(len(s) - 1)) == sorted(
    ...     "ACGTTGCAAACGT"[i : i + 2] for i in range(12)
    ... )
    True
    """
    rng = check_random_state(random_state)
    if isinstance(seq_or_codes, str):
        return _shuffle_strings([seq_or_codes], rng)[0]
    if isinstance(seq_or_codes, np.ndarray):
        a = seq_or_codes
        if a.ndim == 1:
            return _shuffle_codes(a, rng)
        if a.ndim == 2:
            out = np.empty_like(a)
            for i in range(a.shape[0]):
                out[i] = _shuffle_codes(a[i], rng)
            return out
        raise ValueError(f"codes must be 1-D or 2-D, got shape {a.shape}")
    if isinstance(seq_or_codes, Sequence):
        bad = next((s for s in seq_or_codes if not isinstance(s, str)), None)
        if bad is not None:
            raise TypeError(f"expected a list of strings, got an element of type {type(bad).__name__}")
        return _shuffle_strings(seq_or_codes, rng)
    raise TypeError(f"expected str, list of str or numpy array, got {type(seq_or_codes).__name__}")
