"""Pretrained TF-binding sequence models shipped with the package (``src/scfanpy/models/weights/``).

Each model is a folder ``weights/<name>/`` holding ``model.pt`` (scvi-tools' save format, as written by
:meth:`~scfanpy.models.SCFAN.save`, weights stored in float16; a model without data), ``model_card.json``
and ``model_card.md`` (TF list, training data, settings, per-TF test metrics). The script that made each
one is kept in the repository (``PRETRAINED`` and :func:`available_pretrained` name it):

- ``scfan_bertsnr137`` (the default): ``scripts/train_pretrained.py``;
- ``danq_multi158``: ``scripts/train_second_model.py``. Its card also holds, per TF, the validation
  AUROC of the model and of the JASPAR motif model, from which ``sfp.models.best_models``
  picks the model for each TF.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["pretrained", "available_pretrained", "DEFAULT_PRETRAINED", "PRETRAINED"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_PRETRAINED = "scfan_bertsnr137"
#: The shipped models: name -> (one-line description, the script that trained it).
PRETRAINED = {
    "scfan_bertsnr137": (
        "scFAN CNN, 137 TFs, 100 bp; BertSNR JASPAR-site windows vs their shuffles",
        "scripts/train_pretrained.py",
    ),
    "danq_multi158": (
        "DanQ-JASPAR, 158 TFs, 101 bp; DeepBind ENCODE, BertSNR, Zeng CTCF, NFE2, janggu, ENCODE-DREAM, JUND",
        "scripts/train_second_model.py",
    ),
}


def _card(folder: Path) -> dict[str, Any]:
    f = folder / "model_card.json"
    return json.loads(f.read_text()) if f.exists() else {}


def _data(card: dict[str, Any]) -> str:
    """Short name(s) of a card's training data: its ``source`` (first model) or ``sources`` (later)."""
    td = card.get("training_data", {})
    if "sources" in td:
        return ", ".join(td["sources"])
    return td.get("source", "").split(":")[0]


def available_pretrained() -> pd.DataFrame:
    """The pretrained models shipped with scfanpy, one row each.

    Returns
    -------
    models : pandas.DataFrame
        Indexed by model name: ``class``, ``n_tfs``, ``window``, ``n_tracks``, ``data``,
        ``test_mean_auroc``, ``test_mean_auprc`` (on each model's own held-out split, see its card),
        ``n_tfs_deep`` (TFs whose card says the model beat the JASPAR motif model on validation data,
        used by ``sfp.models.best_models``; 0 when the card has no such comparison), ``script`` (the
        script that trained it) and ``default`` (the one :func:`pretrained` loads without a name).

    Examples
    --------
    >>> import scfanpy as sfp
    >>> "scfan_bertsnr137" in sfp.models.available_pretrained().index
    True
    """
    rows = []
    for d in (
        sorted(p for p in WEIGHTS_DIR.iterdir() if (p / "model.pt").exists()) if WEIGHTS_DIR.is_dir() else []
    ):
        c = _card(d)
        arch = c.get("architecture", {})
        rows.append(
            {
                "name": d.name,
                "class": c.get("class"),
                "n_tfs": len(c.get("tf_names", [])),
                "window": arch.get("window"),
                "n_tracks": arch.get("n_tracks"),
                "data": _data(c),
                "test_mean_auroc": c.get("test_metrics", {}).get("mean_auroc"),
                "test_mean_auprc": c.get("test_metrics", {}).get("mean_auprc"),
                "n_tfs_deep": sum(e.get("use") == "deep" for e in (c.get("per_tf") or {}).values()),
                "script": PRETRAINED.get(d.name, ("", ""))[1],
                "default": d.name == DEFAULT_PRETRAINED,
            }
        )
    cols = [
        "name",
        "class",
        "n_tfs",
        "window",
        "n_tracks",
        "data",
        "test_mean_auroc",
        "test_mean_auprc",
        "n_tfs_deep",
        "script",
        "default",
    ]
    return pd.DataFrame(rows, columns=cols).set_index("name")


def pretrained(name: str | os.PathLike | None = None, *, device: str = "cpu"):
    """Load a pretrained TF-binding model (the default one when ``name`` is None).

    The default, ``'scfan_bertsnr137'``, is an scFAN-style CNN (:class:`~scfanpy.models.SCFAN`; conv
    128/160/160 x 8 with batch norm, pool 2, dense 256) with one output per TF for **137 human TFs**,
    trained by ``scripts/train_pretrained.py`` on the BertSNR set (lhy0322/BertSNR, MIT): 100-bp hg19
    windows around ChIP-seq-supported JASPAR sites against their dinucleotide shuffles, up to 1,500
    pairs per TF, each window labelled for its own TF only (masked loss); mean held-out AUROC 0.904.
    Its input is **100 bp of DNA, no accessibility track**:
    :meth:`~scfanpy.models.SCFAN.predict_codes` centre-crops longer windows
    (e.g. 1,000-bp peak windows are scored on their central 100 bp), while
    :meth:`~scfanpy.models.SCFAN.predict_sequences` scans long sequences and keeps each TF's maximum.
    Held-out test pairs (10% per TF, site vs its own shuffle): per-TF AUROC and AUPRC are in the model
    card, ``model.model_card['test_metrics']`` (summary in :func:`available_pretrained`). Negatives are
    shuffles, not genomic background, so scores rank sequences; they are not calibrated genome-wide
    binding probabilities. The TF list is ``model.tf_names``.

    ``'danq_multi158'`` is a DanQ-JASPAR network (:class:`~scfanpy.models.DANQ`; conv 384 x 24 with half
    of the filters started from the TFs' JASPAR motifs, pool 13, BiLSTM 128, dense 256) with **158
    outputs**, trained by ``scripts/train_second_model.py`` on every labelled real data set of the
    project (the ten DeepBind ENCODE experiments, BertSNR, the Zeng 2016 CTCF set, lsgkm NFE2 and
    janggu Oct4 / MafK with genomic negatives, ENCODE-DREAM peaks on the hg19 blocks, kipoi JUND), input
    **101 bp of DNA**. On its own test split it averages AUROC 0.921 over the TFs (the DeepBind test
    sets: 0.960, the JASPAR motif model 0.801 there). Its card lists, per TF, the validation AUROC of
    the model and of the motif model and which one to use (``model.model_card['per_tf']``);
    ``sfp.models.best_models('danq_multi158')`` combines the two accordingly.

    Parameters
    ----------
    name
        A name from :func:`available_pretrained`, or the path of a folder written by a sequence
        model's ``save``. Default: ``'scfan_bertsnr137'``.
    device
        ``'cpu'``, ``'cuda'`` or ``'auto'``.

    Returns
    -------
    model : SCFAN
        A trained :class:`~scfanpy.models.SCFAN` (or other sequence model, e.g.
        :class:`~scfanpy.models.DANQ` for ``'danq_multi158'``) without data, in eval mode,
        loaded by scvi-tools' ``load``; the model card is ``model.model_card`` (dict) and the name
        ``model.pretrained_name``.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> model = sfp.models.pretrained()
    >>> len(model.tf_names), model.input_spec["window"]
    (137, 100)
    >>> p = model.predict_sequences(["GGAACCGGAAGTGACGCGCGCGTTAACCGGAAGTG" * 3])
    >>> p.shape
    (1, 137)
    >>> second = sfp.models.pretrained("danq_multi158")
    >>> len(second.tf_names), second.input_spec["window"]
    (158, 101)
    """
    from ._seqmodels import SeqModelBase

    name = DEFAULT_PRETRAINED if name is None else name
    folder = Path(name)
    if not (folder / "model.pt").exists():
        folder = WEIGHTS_DIR / str(name)
    if not (folder / "model.pt").exists():
        avail = list(available_pretrained().index)
        raise KeyError(
            f"no pretrained model {str(name)!r}; available: {avail} (or a folder saved with model.save)"
        )
    model = SeqModelBase.load(folder, device=device)
    model.model_card = _card(folder)
    model.pretrained_name = folder.name
    return model
