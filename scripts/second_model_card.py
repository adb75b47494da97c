"""Model card and evaluation of ``scripts/train_second_model.py``: per-TF AUROCs, model choice, holdout table.

Kept apart from the training script (which imports it); run the training script, not this file.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import train_second_model as tsm


def jaspar_name(tf: str, names: list[str]) -> str | None:
    """The JASPAR motif name of a TF (case and '::' ignored: 'BATFJUN' -> 'BATF::JUN'), else None."""
    norm = {n.upper().replace("::", ""): n for n in names}
    return norm.get(tf.upper().replace("::", ""))


def both_strands(model, codes: np.ndarray) -> np.ndarray:
    """Mean probability over the forward and reverse-complement strands."""
    return 0.5 * (
        model.predict_codes(codes, batch_size=512) + model.predict_codes(tsm.rc(codes), batch_size=512)
    )


def _auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], p[ok]
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def split_metrics(model, regions, split: str) -> pd.DataFrame:
    """Per TF (sources pooled, and per source): n, positives, AUROC of the model and of the motif model."""
    import scfanpy as sfp

    rows_in = np.flatnonzero(regions.obs["split"].to_numpy() == split)
    lab = regions.obsm["labels"].to_numpy()[rows_in]
    codes = regions.obsm["dna_code"][rows_in]
    src = regions.obs["source"].to_numpy()[rows_in]
    tfs = list(regions.obsm["labels"].columns)
    jas = list(sfp.datasets.jaspar_motifs())
    names = {t: jaspar_name(t, jas) for t in tfs}
    motif = sfp.models.MotifModel(sorted({v for v in names.values() if v}))
    pm = motif.predict_codes(codes)
    pd_ = both_strands(model, codes)
    rows = []
    for j, tf in enumerate(tfs):
        y = lab[:, j]
        mcol = motif.tf_names.index(names[tf]) if names[tf] else None
        for s in ["all", *sorted(set(src[np.isfinite(y)]))]:
            m = np.isfinite(y) & ((src == s) if s != "all" else True)
            if not m.any():
                continue
            rows.append(
                {
                    "tf": tf,
                    "source": s,
                    "n": int(m.sum()),
                    "n_pos": int((y[m] == 1).sum()),
                    "deep_auroc": _auc(y[m], pd_[m, j]),
                    "motif_auroc": _auc(y[m], pm[m, mcol]) if mcol is not None else float("nan"),
                    "motif": names[tf],
                }
            )
    return pd.DataFrame(rows)


def choose(valid: pd.DataFrame) -> dict[str, str]:
    """Per TF: 'deep' when its validation AUROC beats the motif model's (or JASPAR lacks it), else 'motif'."""
    out = {}
    for _, r in valid[valid["source"] == "all"].iterrows():
        if r["motif"] is None or not np.isfinite(r["motif_auroc"]):
            out[r["tf"]] = "deep"
        elif r["n_pos"] < tsm.MIN_VALID_POS or not np.isfinite(r["deep_auroc"]):
            out[r["tf"]] = "motif"
        else:
            out[r["tf"]] = "deep" if r["deep_auroc"] > r["motif_auroc"] else "motif"
    return out


def per_tf_card(valid: pd.DataFrame, test: pd.DataFrame, choice: dict[str, str]) -> dict:
    """``{tf: {jaspar, use, valid: {...}, test: {...}, test_by_source: {...}}}`` for the card."""

    def entry(r):
        return {
            "n": int(r["n"]),
            "n_pos": int(r["n_pos"]),
            "deep_auroc": _r(r["deep_auroc"]),
            "motif_auroc": _r(r["motif_auroc"]),
        }

    out = {}
    for tf, use in choice.items():
        v = valid[(valid["tf"] == tf) & (valid["source"] == "all")]
        t = test[(test["tf"] == tf) & (test["source"] == "all")]
        out[tf] = {
            "jaspar": v["motif"].iloc[0] if len(v) else None,
            "use": use,
            "valid": entry(v.iloc[0]) if len(v) else None,
            "test": entry(t.iloc[0]) if len(t) else None,
            "test_by_source": {
                r["source"]: entry(r)
                for _, r in test[(test["tf"] == tf) & (test["source"] != "all")].iterrows()
            },
        }
    return out


def _r(x) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def make_card(args, model, blocks, valid, test, choice, train_s: float, cmd: str) -> dict:
    """The model card (JSON): data, settings, command, per-TF valid / test AUROCs, the model choice."""
    cls_name, kw = tsm.ARCHS[args.arch]
    n_params = int(sum(p.numel() for p in model.module.parameters()))
    hist = model.history.reset_index().to_dict(orient="list") if model.history is not None else None
    allt = test[(test["source"] == "all")]
    return {
        "name": Path(args.out).name,
        "class": cls_name,
        "architecture": {"window": tsm.WINDOW, "n_tracks": 0, **kw, "n_params": n_params},
        "weights": "float16 state dict (model.pt), loaded into float32",
        "input": f"{tsm.WINDOW}-bp one-hot DNA (no accessibility track); longer inputs: predict_codes centre-crops, "
        "predict_sequences and predict_tf_binding scan windows and keep the max per TF",
        "tf_names": list(model.tf_names),
        "training_data": {
            "sources": tsm.data_summary(blocks),
            "max_pos_per_experiment": args.max_pos,
            "bertsnr_pairs_per_tf": args.bertsnr_pairs,
            "labels": "each window labelled for the TFs its source covers (others missing, masked BCE); "
            "training windows on a random strand",
            "splits": tsm.__doc__.split("Splits come from")[1]
            .split("Early stopping")[0]
            .strip()
            .replace("\n", " "),
        },
        "training": {
            "epochs_max": args.epochs,
            "epochs_run": len(model.history) if model.history is not None else None,
            "best_epoch": int(getattr(model, "best_epoch_", -1)),
            "max_minutes": args.max_minutes,
            "batch_size": args.batch_size,
            "optimizer": f"Adam lr {args.lr}",
            "early_stopping": f"validation AUPRC (mean over TFs), patience {args.patience}",
            "seed": args.seed,
            "device": f"CPU, {args.threads} torch thread(s)",
            "train_seconds": round(train_s, 1),
            "history": hist,
            "command": cmd,
        },
        "evaluation": "AUROC of the mean of both strands' probabilities; motif = sfp.models.MotifModel (JASPAR "
        "CORE vertebrates) on the same 101-bp windows",
        "choice_rule": f"per TF, 'deep' when the model's validation AUROC (own split of the training files) "
        f"exceeds the motif model's, or JASPAR has no motif for the TF; 'motif' when it does not or the TF has "
        f"fewer than {tsm.MIN_VALID_POS} validation positives. Never read from /work/shared/holdout.",
        "test_metrics": {
            "what": "own held-out test split of the training files (see training_data.splits)",
            "mean_auroc": _r(np.nanmean(allt["deep_auroc"])),
            "mean_motif_auroc": _r(np.nanmean(allt["motif_auroc"])),
        },
        "per_tf": per_tf_card(valid, test, choice),
        "caveats": [
            "most negatives are dinucleotide shuffles (DeepBind, BertSNR, Zeng); genomic negatives only for "
            "NFE2, POU5F1/MAFK (janggu) and the ENCODE-DREAM TFs: scores rank sequences, they are not "
            "calibrated genome-wide binding probabilities",
            "no accessibility input: the same scores for every cell type",
            "ENCODE-DREAM test windows (chr20 block) are few per TF; their AUROCs are noisy",
        ],
    }


def _f(x) -> str:
    return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.3f}"


def holdout_markdown(h: dict) -> str:
    """The holdout table of the card (Markdown)."""
    rows = [
        "| experiment | TF | motif | scfan_bertsnr137 | this model | combined | DeepBind (published) | use for this TF |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in h["experiments"]:
        rows.append(
            f"| {e['experiment']} | {e['tf']} | {_f(e['motif'])} | {_f(e['first'])} | {_f(e['second'])} | "
            f"{_f(e['combined'])} | {_f(e['deepbind'])} | {e['use']} |"
        )
    m = h["means"]
    rows.append(
        f"| **mean over {m['n']} TFs a shipped model covers** |  | {_f(m['motif'])} |  |  | **{_f(m['combined'])}** | "
        f"**{_f(m['deepbind'])}** | best shipped per TF: {_f(m['best_shipped'])} |"
    )
    return "\n".join(rows)


def card_markdown(card: dict) -> str:
    """The model card (Markdown) from its JSON."""
    a, tr, td = card["architecture"], card["training"], card["training_data"]
    src = "\n".join(
        f"| {s} | {d['negatives']} | "
        + " | ".join(
            f"{d[k]['windows']:,} / {d[k]['positives']:,}" if k in d else ""
            for k in ("train", "valid", "test")
        )
        + " |"
        for s, d in td["sources"].items()
    )
    tfs = "\n".join(
        f"| {t} | {e['jaspar'] or ''} | {_f((e['valid'] or {}).get('deep_auroc'))} | {_f((e['valid'] or {}).get('motif_auroc'))} | "
        f"{_f((e['test'] or {}).get('deep_auroc'))} | {_f((e['test'] or {}).get('motif_auroc'))} | "
        f"{(e['test'] or {}).get('n_pos', '')} | {e['use']} |"
        for t, e in card["per_tf"].items()
    )
    n_deep = sum(e["use"] == "deep" for e in card["per_tf"].values())
    hold = ""
    if "holdout" in card:
        hold = f"\n## Held-out DeepBind ENCODE test sets (`/work/shared/holdout`, evaluated once)\n\n{card['holdout']['what']}\n\n{holdout_markdown(card['holdout'])}\n"
    return f"""# Pretrained model `{card["name"]}`

Multi-task {card["class"]} on {a["window"]}-bp DNA, {len(card["tf_names"])} TF outputs, trained on every labelled
real data set in `shared/data` (DeepBind ENCODE, BertSNR, Zeng CTCF, lsgkm NFE2, janggu Oct4/MafK,
ENCODE-DREAM on the hg19 blocks, kipoi JUND).

- Load: `sfp.models.pretrained("{card["name"]}")`; combined with the motif model:
  `sfp.models.best_models("{card["name"]}")` (the deep model for the {n_deep} TFs marked `deep` below).
- Input: {card["input"]}.
- Architecture: {", ".join(f"{k} {v}" for k, v in a.items() if k not in ("window", "n_tracks", "n_params"))};
  {a["n_params"]:,} parameters, stored as float16.
- Labels: {td["labels"]}.
- Splits: {td["splits"]}
- Training: {tr["epochs_run"]} epoch(s) (max {tr["epochs_max"]}, wall cap {tr["max_minutes"]} min), best epoch
  {tr["best_epoch"]} (0-based), batch {tr["batch_size"]}, {tr["optimizer"]}, seed {tr["seed"]}, {tr["train_seconds"] / 60:.1f} min on {tr["device"]}.
- Command: `{tr["command"]}`
- Evaluation: {card["evaluation"]}.
- Own test split: mean AUROC **{_f(card["test_metrics"]["mean_auroc"])}** over the TFs (motif model on the TFs
  JASPAR has: {_f(card["test_metrics"]["mean_motif_auroc"])}).
- Model choice: {card["choice_rule"]}
- Caveats: {"; ".join(card["caveats"])}.

## Data (windows / positive labels per split)

Positive labels are summed over TFs: an ENCODE-DREAM window can be bound by several.

| source | negatives | train | valid | test |
| --- | --- | --- | --- | --- |
{src}
{hold}
## Per TF: own validation and test splits, and which model to use

| TF | JASPAR | valid AUROC (this model) | valid AUROC (motif) | test AUROC (this model) | test AUROC (motif) | test positives | use for this TF |
| --- | --- | --- | --- | --- | --- | --- | --- |
{tfs}
"""


# ----------------------------------------------------------------------------------------- holdout
def evaluate_holdout(args) -> None:
    """Once, after training: AUROC on the project's held-out DeepBind test sets, written into the card."""
    import scfanpy as sfp

    out = Path(args.out)
    card = json.loads((out / "model_card.json").read_text())
    second = sfp.models.pretrained(str(out))
    first = sfp.models.pretrained("scfan_bertsnr137")
    combined = sfp.models.best_models(str(out))
    jas = list(sfp.datasets.jaspar_motifs())
    pub = pd.read_csv(
        Path(args.data_dir) / "reference" / "deepbind_published_auc" / "deepbind_format_index.tsv", sep="\t"
    )
    pub = pub.set_index("experiment")["DeepBind_AUC"]
    rows = []
    for f in sorted((Path(args.holdout_dir) / "data").glob("*/*_B.seq.gz")):
        exp = f.name[: -len("_B.seq.gz")]
        tf = exp.split("_")[0]
        with gzip.open(f, "rt") as fh:
            b = pd.read_csv(fh, sep="\t")
        codes, y = tsm.fixed(b["seq"].tolist()), b["Bound"].to_numpy(float)
        mname = jaspar_name(tf, jas)
        motif = _auc(y, sfp.models.MotifModel([mname]).predict_codes(codes)[:, 0]) if mname else None
        one = (
            _auc(y, both_strands(first, codes)[:, first.tf_names.index(tf)]) if tf in first.tf_names else None
        )
        two = (
            _auc(y, both_strands(second, codes)[:, second.tf_names.index(tf)])
            if tf in second.tf_names
            else None
        )
        cname = combined.output_name(tf)
        comb = _auc(y, combined.predict_codes(codes)[:, combined.tf_names.index(cname)]) if cname else None
        use = combined.choice.get(cname, "") if cname else ""
        rows.append(
            {
                "experiment": exp,
                "tf": tf,
                "motif": motif,
                "first": one,
                "second": two,
                "combined": comb,
                "deepbind": float(pub.get(exp, np.nan)),
                "use": use or "none",
            }
        )
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    cov = df[df[["motif", "first", "second"]].notna().any(axis=1)]
    best = cov[["motif", "first", "second"]].max(axis=1)
    card["holdout"] = {
        "what": "DeepBind ENCODE `_B` test sets in /work/shared/holdout/deepbind_encode (500 peaks + 500 dinucleotide "
        "shuffles each; SOURCE.txt there); read only after training, never for training, early stopping or the "
        "model choice. Deep models: mean of both strands. 'combined' = sfp.models.best_models(name) (the per-TF "
        "choice from the validation AUROCs); 'best shipped per TF' = the best of the three columns per TF, "
        "picked on this very holdout (an upper bound, not a usable rule). DeepBind = published AUC (Alipanahi "
        "2015 supplementary table, DeepBind column).",
        "experiments": [{k: (_r(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
        "means": {
            "n": int(len(cov)),
            "tfs": cov["tf"].tolist(),
            "motif": _r(cov["motif"].mean()),
            "combined": _r(cov["combined"].mean()),
            "best_shipped": _r(best.mean()),
            "deepbind": _r(cov["deepbind"].mean()),
        },
    }
    (out / "model_card.json").write_text(json.dumps(card, indent=1))
    (out / "model_card.md").write_text(card_markdown(card))
    print(holdout_markdown(card["holdout"]), flush=True)
