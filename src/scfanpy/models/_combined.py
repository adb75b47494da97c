"""Per-TF combination of TF-binding models: each TF is scored by the model chosen for it.

:class:`CombinedModel` follows the model contract of :func:`scfanpy.tl.predict_tf_binding` (``tf_names``,
``input_spec``, ``predict_codes``, ``predict_sequences``, ``pwms``), so it is passed as ``model=`` like any
other model. :func:`best_models` builds the usual one: a shipped deep model for the TFs where, on its own
validation data, it beat the JASPAR motif model, and the motif model for every other TF.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CombinedModel", "best_models", "tf_key"]

_COMPLEMENT = np.array([3, 2, 1, 0, 4], dtype=np.uint8)
_FILE = "combined.json"


def tf_key(name: str) -> str:
    """The key TF names are matched on: upper case, without ``'::'`` (``'BATF::JUN'`` -> ``'BATFJUN'``)."""
    return str(name).upper().replace("::", "")


def _name_of(model: Any) -> str:
    name = getattr(model, "pretrained_name", None) or getattr(model, "name", None)
    return name if isinstance(name, str) and name else type(model).__name__


def _is_motif(model: Any) -> bool:
    from ._motif import MotifModel

    return isinstance(model, MotifModel)


def _resolve(spec: Any, tfs: Sequence[str] | None) -> Any:
    """A model from ``spec``: 'motif' (JASPAR, for the ``tfs`` it has), a pretrained name, or a model."""
    if not isinstance(spec, str):
        return spec
    if spec.lower() in ("motif", "jaspar", "jaspar_motif"):
        from ..datasets import jaspar_motifs
        from ._motif import MotifModel

        if tfs is None:
            return MotifModel()
        have = {tf_key(k): k for k in jaspar_motifs()}
        return MotifModel([have[tf_key(t)] for t in tfs if tf_key(t) in have])
    from ._pretrained import pretrained

    return pretrained(spec)


class CombinedModel:
    """TF-binding models combined per TF: each TF's probability comes from the model chosen for it.

    TF names are matched across models case-insensitively and ignoring ``'::'``, so the deep model's
    ``'ARID3A'`` and JASPAR's ``'Arid3a'`` are one TF. The output TFs (``tf_names``) are those of the
    first model, then the other models' TFs it lacks. Each is scored by the model ``choice`` names for
    it; a TF not in ``choice`` by ``default`` when that model has it, else by the first model in
    ``models`` that does. An output keeps the spelling of the model that scores it.

    Sequences of any length are accepted (``input_spec['window'] == 0``): a model with a fixed window
    scores longer sequences in half-overlapping windows and keeps each TF's maximum (as
    :func:`~scfanpy.tl.predict_tf_binding` does for it alone) and shorter ones padded with N. With
    ``both_strands``, the probabilities of every model other than the motif model (which scans both
    strands itself) are the mean over the sequence and its reverse complement. Sequence-only models
    (``n_tracks == 0``) only.

    Parameters
    ----------
    models
        ``{name: model}`` (or a sequence of models, named by their ``pretrained_name`` / ``name``). A
        model may be given as a string: ``'motif'`` (:class:`~scfanpy.models.MotifModel` on JASPAR, for
        ``tfs`` when given) or a name known to :func:`~scfanpy.models.pretrained`.
    choice
        ``{tf: model name}``: the model for each listed TF (TF names in any model's spelling).
    default
        The model for TFs not in ``choice`` (default: the first of ``models``).
    tfs
        Output only these TFs (default: every TF of every model).
    both_strands
        Average the non-motif models over both strands.
    name
        The name :func:`~scfanpy.tl.predict_tf_binding` records (default ``'combined(<model names>)'``).

    Attributes
    ----------
    choice
        ``{output TF: model name}`` for every output TF: what :meth:`describe` tabulates.
    evidence
        ``{output TF: {...}}``: the numbers a choice was made on, when known (:func:`best_models`).

    Examples
    --------
    >>> import scfanpy as sfp
    >>> m = sfp.models.CombinedModel(
    ...     {"jaspar_motif": "motif", "scfan_bertsnr137": "scfan_bertsnr137"},
    ...     choice={"GATA3": "scfan_bertsnr137"},
    ...     tfs=["CTCF", "GATA3"],
    ... )
    >>> m.choice
    {'CTCF': 'jaspar_motif', 'GATA3': 'scfan_bertsnr137'}
    >>> m.predict_sequences(["ACGT" * 30 + "AGATAAGG" + "ACGT" * 30]).shape
    (1, 2)
    """

    def __init__(
        self,
        models: Mapping[str, Any] | Sequence[Any],
        choice: Mapping[str, str] | None = None,
        *,
        default: str | None = None,
        tfs: Sequence[str] | None = None,
        both_strands: bool = True,
        name: str | None = None,
    ):
        if not isinstance(models, Mapping):
            models = {_name_of(m): m for m in models}
        if not models:
            raise ValueError("models: at least one model")
        self.models: dict[str, Any] = {str(k): _resolve(v, tfs) for k, v in models.items()}
        for k, m in self.models.items():
            if int(m.input_spec.get("n_tracks", 0) or 0):
                raise ValueError(
                    f"model {k!r} takes signal tracks: CombinedModel combines sequence-only models"
                )
        self.default = next(iter(self.models)) if default is None else str(default)
        if self.default not in self.models:
            raise KeyError(f"default {self.default!r} is not one of the models {list(self.models)}")
        self.both_strands = bool(both_strands)
        self.name = name or "combined(" + "+".join(self.models) + ")"
        self.evidence: dict[str, dict] = {}
        self._route(dict(choice or {}), tfs)

    # ------------------------------------------------------------------ routing
    def _route(self, choice: dict[str, str], tfs: Sequence[str] | None) -> None:
        """The choice for every output TF, the output names, per model (output columns, its columns)."""
        index = {k: {tf_key(t): i for i, t in enumerate(m.tf_names)} for k, m in self.models.items()}
        keys = list(dict.fromkeys(tf_key(t) for m in self.models.values() for t in m.tf_names))
        if tfs is not None:
            wanted = [tf_key(t) for t in tfs]
            missing = [t for t, k in zip(tfs, wanted, strict=True) if k not in keys]
            if missing:
                raise KeyError(f"TFs in none of the models: {missing}")
            keys = list(dict.fromkeys(wanted))
        asked = {}
        for tf, mname in choice.items():
            if mname not in self.models:
                raise KeyError(f"choice[{tf!r}] = {mname!r} is not one of the models {list(self.models)}")
            if tf_key(tf) not in index[mname]:
                raise KeyError(f"choice[{tf!r}]: model {mname!r} has no TF {tf!r}")
            asked[tf_key(tf)] = mname
        names, chosen = [], []
        for k in keys:
            mname = asked.get(k)
            if mname is None:
                mname = (
                    self.default
                    if k in index[self.default]
                    else next(n for n in self.models if k in index[n])
                )
            chosen.append(mname)
            names.append(self.models[mname].tf_names[index[mname][k]])
        self._tf_names = names
        self.choice = dict(zip(names, chosen, strict=True))
        self._reason = {n: ("choice" if tf_key(n) in asked else "default") for n in names}
        self._routes = {
            mname: (
                np.array([i for i, c in enumerate(chosen) if c == mname]),
                np.array([index[mname][keys[i]] for i, c in enumerate(chosen) if c == mname]),
            )
            for mname in self.models
            if mname in chosen
        }

    def output_name(self, tf: str) -> str | None:
        """The output name of ``tf`` in any model's spelling (None when no output matches)."""
        k = tf_key(tf)
        return next((t for t in self._tf_names if tf_key(t) == k), None)

    # ------------------------------------------------------------------ contract
    @property
    def tf_names(self) -> list[str]:
        """Output TF names."""
        return list(self._tf_names)

    @property
    def input_spec(self) -> dict:
        """``window`` 0 (any length), no signal tracks."""
        return {"window": 0, "n_tracks": 0, "track_names": []}

    @property
    def pwms(self) -> dict[str, np.ndarray]:
        """Probability matrices ``(L, 4)`` of the output TFs: the scoring model's, else another model's."""
        have = {
            k: {tf_key(t): v for t, v in (getattr(m, "pwms", None) or {}).items()}
            for k, m in self.models.items()
        }
        out = {}
        for t in self._tf_names:
            order = [self.choice[t], *(k for k in self.models if k != self.choice[t])]
            found = next((have[k][tf_key(t)] for k in order if tf_key(t) in have[k]), None)
            if found is not None:
                out[t] = np.asarray(found)
        return out

    def __repr__(self) -> str:
        counts = pd.Series(self.choice).value_counts()
        return (
            f"CombinedModel({len(self._tf_names)} TFs: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + ")"
        )

    def describe(self) -> pd.DataFrame:
        """Which model scores each TF, and why.

        Returns
        -------
        table : pandas.DataFrame
            Indexed by output TF: ``model`` (its name), ``reason`` (``'choice'`` or ``'default'``) and the
            evidence columns when known (e.g. ``valid_auroc_deep``, ``valid_auroc_motif``).
        """
        df = pd.DataFrame({"model": pd.Series(self.choice), "reason": pd.Series(self._reason)})
        if self.evidence:
            df = df.join(pd.DataFrame.from_dict(self.evidence, orient="index"))
        df.index.name = "tf"
        return df

    def _predict_one(self, model: Any, codes: np.ndarray, batch_size: int) -> np.ndarray:
        """One model on codes of any width: tiles of its window (max per TF), both strands when asked."""
        from .._torch import fit_window, tile_windows

        w = int(model.input_spec.get("window", 0) or 0)
        strands = [codes]
        if self.both_strands and not _is_motif(model):
            strands.append(_COMPLEMENT[codes[:, ::-1]])
        total = 0.0
        for c in strands:
            if 0 < w < c.shape[1]:
                tiles, n_tiles = tile_windows(c, w)
                p = np.asarray(model.predict_codes(tiles, batch_size=batch_size), np.float32)
                p = p.reshape(len(c), n_tiles, -1)
                p = np.where(np.isnan(p), -np.inf, p).max(1)  # a tile without sequence is no evidence
                p[np.isneginf(p)] = np.nan
            else:
                c = fit_window(c, w) if w > 0 else c  # shorter than the window: centred, N-padded
                p = np.asarray(model.predict_codes(c, batch_size=batch_size), np.float32)
            total = total + p
        return total / len(strands)

    def predict_codes(
        self, codes: np.ndarray, tracks: np.ndarray | None = None, *, batch_size: int = 256
    ) -> np.ndarray:
        """Binding probability of each output TF in each sequence.

        Parameters
        ----------
        codes
            uint8 ``(n, L)``, A=0 C=1 G=2 T=3 N=4, any ``L``.
        tracks
            Ignored (sequence-only models); accepted for the common model interface.
        batch_size
            Sequences (or windows) per batch of each model.

        Returns
        -------
        probabilities : numpy.ndarray
            float32 ``(n, n_tfs)`` in ``tf_names`` order; NaN where the chosen model gives no evidence
            (a deep model on a sequence entirely N).
        """
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"codes must be (n, L) uint8 codes, got shape {codes.shape}")
        out = np.full((codes.shape[0], len(self._tf_names)), np.nan, dtype=np.float32)
        for mname, (cols_out, cols_in) in self._routes.items():
            out[:, cols_out] = self._predict_one(self.models[mname], codes, batch_size)[:, cols_in]
        return out

    def predict_sequences(self, seqs: Sequence[str] | str, *, batch_size: int = 256) -> pd.DataFrame:
        """Binding probabilities for DNA strings (sequences x TFs; equal lengths are scored together)."""
        from ..genome import encode_sequences

        seqs = [seqs] if isinstance(seqs, str) else list(seqs)
        out = np.full((len(seqs), len(self._tf_names)), np.nan, dtype=np.float32)
        encoded = encode_sequences(seqs)
        lengths = np.array([len(c) for c in encoded])
        for w in np.unique(lengths[lengths > 0]):
            idx = np.flatnonzero(lengths == w)
            out[idx] = self.predict_codes(np.stack([encoded[i] for i in idx]), batch_size=batch_size)
        return pd.DataFrame(out, columns=self._tf_names)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the combination to a folder: ``combined.json`` plus one sub-folder per saved deep model.

        Motif models are stored as their matrices and settings, shipped pretrained models by name, other
        models with their own ``save`` (scvi-tools format).
        """
        path = Path(path)
        if (path / _FILE).exists() and not overwrite:
            raise FileExistsError(f"{path / _FILE} exists (overwrite=True to replace it)")
        path.mkdir(parents=True, exist_ok=True)
        specs = {k: _model_spec(k, m, path) for k, m in self.models.items()}
        spec = {
            "models": specs,
            "choice": {t: m for t, m in self.choice.items() if self._reason[t] == "choice"},
            "default": self.default,
            "tfs": self._tf_names,
            "both_strands": self.both_strands,
            "name": self.name,
            "evidence": self.evidence,
        }
        (path / _FILE).write_text(json.dumps(spec, indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> CombinedModel:
        """Read a combination written by :meth:`save`."""
        path = Path(path)
        spec = json.loads((path / _FILE).read_text())
        models = {k: _model_from_spec(s, path) for k, s in spec["models"].items()}
        out = cls(
            models,
            spec["choice"],
            default=spec["default"],
            tfs=spec["tfs"],
            both_strands=spec["both_strands"],
            name=spec["name"],
        )
        out.evidence = spec.get("evidence", {})
        return out


def _model_spec(key: str, model: Any, folder: Path) -> dict:
    """How :meth:`CombinedModel.save` stores one model."""
    from ._pretrained import WEIGHTS_DIR

    if _is_motif(model):
        return {
            "kind": "motif",
            "motifs": {t: np.asarray(p).tolist() for t, p in model.pwms.items()},
            "background": list(map(float, model.background)),
            "pseudocount": model.pseudocount,
            "prior": model.prior,
            "resolution": model.resolution,
        }
    name = getattr(model, "pretrained_name", None)
    if name and (WEIGHTS_DIR / name / "model.pt").exists():
        return {"kind": "pretrained", "name": name}
    if not hasattr(model, "save"):
        raise TypeError(f"model {key!r} ({type(model).__name__}) cannot be saved")
    model.save(folder / key, overwrite=True)
    return {"kind": "saved", "folder": key}


def _model_from_spec(spec: dict, folder: Path) -> Any:
    from ._motif import MotifModel
    from ._pretrained import pretrained

    if spec["kind"] == "motif":
        motifs = {t: np.asarray(p) for t, p in spec["motifs"].items()}
        kw = {k: spec[k] for k in ("background", "pseudocount", "prior", "resolution")}
        return MotifModel(motifs=motifs, **kw)
    if spec["kind"] == "pretrained":
        return pretrained(spec["name"])
    return pretrained(folder / spec["folder"])


def _candidates(cards: Mapping[str, dict]) -> dict[str, list[tuple[str, str, float, float | None, int]]]:
    """Per TF key, ``(model, tf, valid AUROC deep, valid AUROC motif, valid positives)`` from each card."""
    out: dict[str, list] = {}
    for mname, card in cards.items():
        for tf, e in (card.get("per_tf") or {}).items():
            v = e.get("valid") or {}
            if v.get("deep_auroc") is not None:
                out.setdefault(tf_key(tf), []).append(
                    (mname, tf, float(v["deep_auroc"]), v.get("motif_auroc"), int(v.get("n_pos", 0)))
                )
    return out


def best_models(
    deep: str | Sequence[str] | None = None,
    *,
    tfs: Sequence[str] | None = None,
    min_gain: float = 0.0,
    min_pos: int = 10,
    both_strands: bool = True,
) -> CombinedModel:
    """Shipped deep models for the TFs where they beat the JASPAR motifs on validation data; motifs elsewhere.

    The choice is read from each deep model's card (``model.model_card['per_tf'][tf]['valid']``: the AUROC
    of the model and of :class:`~scfanpy.models.MotifModel` on the same validation windows of its
    training files, never on the project's holdout). A TF goes to a deep model when its validation AUROC
    exceeds the motif model's by more than ``min_gain`` (with at least ``min_pos`` validation positives),
    or when JASPAR has no motif for it; with several deep models, to the one with the highest validation
    AUROC. Every other TF is scored by the motif model.

    Parameters
    ----------
    deep
        Names (or folders) of pretrained models whose cards carry ``per_tf`` validation AUROCs; default:
        every shipped one that does.
    tfs
        Output only these TFs (any model's spelling); default: all of JASPAR plus the deep models' TFs.
    min_gain, min_pos
        The margin the deep model must win by, and the validation positives it needs.
    both_strands
        See :class:`CombinedModel`.

    Returns
    -------
    model : CombinedModel
        ``models`` = ``{'jaspar_motif': MotifModel, <deep name>: model, ...}``;
        :meth:`~CombinedModel.describe` lists the choice with the validation AUROCs it was made on.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> m = sfp.models.best_models("danq_multi158", tfs=["CTCF", "GATA1", "EP300"])
    >>> m.choice
    {'CTCF': 'danq_multi158', 'GATA1': 'jaspar_motif', 'EP300': 'danq_multi158'}
    >>> m.describe().loc["CTCF", ["valid_auroc_deep", "valid_auroc_motif"]].tolist()
    [0.9636, 0.9282]
    """
    from ._pretrained import WEIGHTS_DIR, _card, available_pretrained, pretrained

    if deep is None:
        deep = [n for n in available_pretrained().index if _card(WEIGHTS_DIR / n).get("per_tf")]
    names = [deep] if isinstance(deep, (str, os.PathLike)) else list(deep)
    loaded = {}
    for n in names:
        m = pretrained(n)
        if not m.model_card.get("per_tf"):
            raise ValueError(
                f"model {n!r} has no per-TF validation AUROCs in its card: cannot choose from it"
            )
        loaded[m.pretrained_name] = m
    cands = _candidates({k: m.model_card for k, m in loaded.items()})
    want = None if tfs is None else {tf_key(t) for t in tfs}
    choice, shown = {}, {}
    for k, rows in cands.items():
        wins = [r for r in rows if r[3] is None or (r[4] >= min_pos and r[2] > r[3] + min_gain)]
        shown[k] = max(wins or rows, key=lambda r: r[2])
        if wins and (want is None or k in want):
            choice[shown[k][1]] = shown[k][0]
    models = {"jaspar_motif": "motif", **loaded}
    out = CombinedModel(models, choice, default="jaspar_motif", tfs=tfs, both_strands=both_strands)
    for mname, tf, d, mo, npos in shown.values():
        name = out.output_name(tf)
        if name is not None:
            out.evidence[name] = {
                "deep_model": mname,
                "valid_auroc_deep": d,
                "valid_auroc_motif": mo,
                "valid_positives": npos,
            }
    return out
