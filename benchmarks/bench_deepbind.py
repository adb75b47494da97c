"""DeepBind ENCODE benchmark: test AUC of DanQ, FactorNet and scFAN beside DeepBind*'s published AUC.

For each of the 10 DeepBind ENCODE ChIP-seq experiments shipped in the data registry: train on the
``_AC`` positives (at most ``--max-pos``, sampled at random) plus one exact dinucleotide shuffle of each
(:func:`scfanpy.pp.dinucleotide_shuffle`), 10% of the pairs held out for early stopping; test on ``_B``
(500 peaks + 500 dinucleotide shuffles, made by DeepBind's authors). Test predictions average the
forward and reverse-complement strands. A 6-mer logistic regression is the baseline row.

Run (about 1 h on one shared CPU thread with the defaults)::

    SCFANPY_DATA_DIR=/tmp/sfpcache nice -n 10 python benchmarks/bench_deepbind.py

It prints the markdown table and writes it into ``docs/benchmarks/sequence_models.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ARCHS = {
    # window 101 (DeepBind sequences); published widths, scFAN pools by 2 instead of 4 to fit 101 bp
    "DanQ": ("DANQ", {"jaspar_init": True}),  # DanQ-JASPAR: first filters from JASPAR (the TF's motif first)
    "FactorNet": ("FACTORNET", {}),
    "scFAN": ("SCFAN", {"pool": 2}),
}
WINDOW = 101


def encode_fixed(seqs, width: int = WINDOW) -> np.ndarray:
    """Sequences -> uint8 codes ``(n, width)``, centred, padded with N / cropped."""
    from scfanpy.genome import encode_sequence

    out = np.full((len(seqs), width), 4, dtype=np.uint8)
    for i, s in enumerate(seqs):
        c = encode_sequence(s)
        if len(c) >= width:
            o = (len(c) - width) // 2
            out[i] = c[o : o + width]
        else:
            o = (width - len(c)) // 2
            out[i, o : o + len(c)] = c
    return out


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of uint8 codes (N stays N)."""
    comp = np.array([3, 2, 1, 0, 4], dtype=np.uint8)
    return comp[codes[:, ::-1]]


def load_experiment(exp: str, max_pos: int, seed: int, rc_augment: bool = True):
    """Training codes/labels/split (positives + exact dinucleotide shuffles) and test codes/labels.

    With ``rc_augment`` the reverse complement of every training window is added (not to validation).
    """
    import scfanpy as sfp

    rng = np.random.default_rng(seed)
    ac = sfp.datasets.deepbind_encode(exp, "AC")
    pos = ac.loc[ac["Bound"] == 1, "seq"].drop_duplicates().to_numpy()
    if len(pos) > max_pos:
        pos = pos[np.sort(rng.choice(len(pos), size=max_pos, replace=False))]
    pc = encode_fixed(pos)
    nc = sfp.pp.dinucleotide_shuffle(pc, rng)
    n = len(pc)
    valid_pair = rng.random(n) < 0.1
    codes = np.concatenate([pc, nc])
    y = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.float32)
    split = np.where(np.concatenate([valid_pair, valid_pair]), "valid", "train")
    if rc_augment:
        tr = split == "train"
        codes = np.concatenate([codes, reverse_complement_codes(codes[tr])])
        y = np.concatenate([y, y[tr]])
        split = np.concatenate([split, split[tr]])
    b = sfp.datasets.deepbind_encode(exp, "B")
    return codes, y, split, encode_fixed(b["seq"].tolist()), b["Bound"].to_numpy().astype(int)


def regions_anndata(codes: np.ndarray, y: np.ndarray, split: np.ndarray, name: str = "TF"):
    """A region AnnData as the sequence models expect it (one TF column)."""
    import anndata as ad

    idx = pd.Index([f"r{i}" for i in range(len(codes))])
    a = ad.AnnData(obs=pd.DataFrame({"split": pd.Categorical(split)}, index=idx))
    a.obsm["dna_code"] = codes
    a.obsm["labels"] = pd.DataFrame({name: y}, index=idx)
    return a


def fit_predict(
    arch: str,
    codes,
    y,
    split,
    test_codes,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    tf: str = "TF",
    patience: int = 2,
    reduce_lr: bool = False,
):
    """Train one package model on the training set, return (test probabilities, train seconds, epochs run)."""
    import scfanpy as sfp

    cls_name, kw = ARCHS[arch]
    cls = getattr(sfp.models, cls_name)
    adata = regions_anndata(codes, y, split, tf)
    cls.setup_anndata(adata)
    model = cls(adata, **kw)
    t0 = time.perf_counter()
    model.train(
        max_epochs=epochs,
        batch_size=batch_size,
        early_stopping_patience=patience,
        plan_kwargs={"reduce_lr_on_plateau": reduce_lr, "lr_patience": 0},
        enable_progress_bar=False,
        random_state=seed,
    )
    t_train = time.perf_counter() - t0
    p = 0.5 * (
        model.predict_codes(test_codes)[:, 0]
        + model.predict_codes(reverse_complement_codes(test_codes))[:, 0]
    )
    n_ep = len(model.history) if model.history is not None else epochs
    return p, t_train, n_ep


def kmer_baseline(codes, y, split, test_codes, k: int = 6):
    """Logistic regression on reverse-complement-collapsed k-mer counts (the baseline row)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    def feats(c):
        n, length = c.shape
        ok = np.ones((n, length - k + 1), dtype=bool)
        idx = np.zeros((n, length - k + 1), dtype=np.int64)
        ridx = np.zeros_like(idx)
        for j in range(k):
            col = c[:, j : length - k + 1 + j].astype(np.int64)
            ok &= col < 4
            idx = idx * 4 + np.minimum(col, 3)
            ridx = ridx + (3 - np.minimum(col, 3)) * 4**j
        key = np.minimum(idx, ridx)
        rows = np.repeat(np.arange(n), length - k + 1)[ok.ravel()]
        return sparse.csr_matrix((np.ones(len(rows)), (rows, key.ravel()[ok.ravel()])), shape=(n, 4**k))

    tr = split == "train"
    x = feats(codes[tr])
    scale = 1.0 / x.sum(1).A.ravel().mean()
    clf = LogisticRegression(C=0.5, max_iter=2000)
    clf.fit(x * scale, y[tr])
    return clf.predict_proba(feats(test_codes) * scale)[:, 1]


def seed_ensembles(folder: Path, exps, archs, auc_fn) -> dict[str, dict[str, float]]:
    """Per model: mean test AUC over the seeds saved in ``folder`` and AUC of the seeds' mean probability."""
    import scfanpy as sfp

    out: dict[str, dict[str, float]] = {}
    for m in archs:
        for exp in exps:
            files = sorted(folder.glob(f"{exp}__{m}__s*.npy"))
            if len(files) < 2:
                continue
            y = sfp.datasets.deepbind_encode(exp, "B")["Bound"].to_numpy().astype(int)
            ps = [np.load(f) for f in files]
            k = len(ps)
            out.setdefault(f"{m} (mean of {k} seeds)", {})[exp] = float(np.mean([auc_fn(y, p) for p in ps]))
            out.setdefault(f"{m} ({k}-seed ensemble)", {})[exp] = float(auc_fn(y, np.mean(ps, axis=0)))
    return out


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiments", nargs="*", default=None, help="default: all 10")
    ap.add_argument("--archs", nargs="*", default=list(ARCHS))
    ap.add_argument("--max-pos", type=int, default=2500, help="training positives per experiment (cap)")
    ap.add_argument("--epochs", type=int, default=2, help="max epochs (early stopping: --patience)")
    ap.add_argument("--patience", type=int, default=2, help="early-stopping patience (epochs)")
    ap.add_argument(
        "--reduce-lr",
        action="store_true",
        help="divide the learning rate by 10 after each epoch without a better validation AUPRC",
    )
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-rc-augment", action="store_true", help="do not add reverse complements to training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", default="/tmp/bench_deepbind.csv", help="per-run rows (resumable)")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks/sequence_models.md")
    ap.add_argument(
        "--section",
        default="deepbind",
        help="marked section of docs/benchmarks/sequence_models.md to write (another name adds a section)",
    )
    ap.add_argument("--table-only", action="store_true", help="only tabulate the rows already in --csv")
    ap.add_argument(
        "--save-preds",
        default=None,
        help="folder for each run's test probabilities (<exp>__<model>__s<seed>.npy)",
    )
    ap.add_argument(
        "--ensemble",
        default=None,
        help="folder of saved probabilities: add per-model columns for the mean AUC over the saved seeds "
        "and the AUC of their averaged probabilities",
    )
    args = ap.parse_args(argv)

    import logging

    import torch
    from sklearn.metrics import roc_auc_score

    import scfanpy as sfp

    torch.set_num_threads(args.threads)
    logging.getLogger("scfanpy").setLevel(logging.WARNING)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    exps = args.experiments or sfp.datasets.deepbind_experiments()
    pub = sfp.datasets.deepbind_published_auc()
    csv = Path(args.csv)
    done = (
        pd.read_csv(csv)
        if csv.exists()
        else pd.DataFrame(columns=["experiment", "model", "auc", "train_s", "epochs", "n_train"])
    )
    rows = done.to_dict("records")
    have = {(r["experiment"], r["model"]) for r in rows}
    for exp in [] if args.table_only else exps:
        codes, y, split, tc, ty = load_experiment(exp, args.max_pos, args.seed, not args.no_rc_augment)
        n_train = int((split == "train").sum())
        todo = [m for m in ["6-mer LR", *args.archs] if (exp, m) not in have]
        for m in todo:
            t0 = time.perf_counter()
            if m == "6-mer LR":
                p, ts, ne = kmer_baseline(codes, y, split, tc), None, 0
                ts = time.perf_counter() - t0
            else:
                p, ts, ne = fit_predict(
                    m,
                    codes,
                    y,
                    split,
                    tc,
                    epochs=args.epochs,
                    batch_size=args.batch_size,
                    seed=args.seed,
                    tf=exp.split("_")[0],
                    patience=args.patience,
                    reduce_lr=args.reduce_lr,
                )
            auc = float(roc_auc_score(ty, p))
            if args.save_preds and m != "6-mer LR":
                Path(args.save_preds).mkdir(parents=True, exist_ok=True)
                np.save(Path(args.save_preds) / f"{exp}__{m}__s{args.seed}.npy", np.asarray(p, np.float32))
            rows.append(
                {"experiment": exp, "model": m, "auc": auc, "train_s": ts, "epochs": ne, "n_train": n_train}
            )
            pd.DataFrame(rows).to_csv(csv, index=False)
            print(f"{exp:45s} {m:10s} AUC {auc:.4f}  train {ts:6.1f}s  epochs {ne}", flush=True)

    res = pd.DataFrame(rows)
    res = res[res["experiment"].isin(exps)]
    tab = res.pivot_table(index="experiment", columns="model", values="auc")
    cols = [c for c in ["DanQ", "FactorNet", "scFAN", "6-mer LR"] if c in tab.columns]
    tab = tab[cols]
    tab.insert(0, "DeepBind*", pub.reindex(tab.index)["DeepBind*"])
    if args.ensemble:  # the seed columns replace the single-run column of each model
        for col, vals in seed_ensembles(Path(args.ensemble), exps, args.archs, roc_auc_score).items():
            tab[col] = pd.Series(vals)
            tab = tab.drop(columns=[col.split(" (")[0]], errors="ignore")
        tab = tab[[c for c in tab.columns if c != "6-mer LR"] + ["6-mer LR"]]
    complete = tab.notna().all(axis=1)
    tab.loc[f"mean ({int(complete.sum())} experiments with every model)"] = tab[complete].mean()
    secs = res[res["model"] != "6-mer LR"].groupby("model")["train_s"].sum()
    fmt = tab.map(lambda v: "n/a" if pd.isna(v) else f"{v:.3f}")
    best = tab.drop(columns=["DeepBind*"]).idxmax(axis=1, skipna=True)
    for e in tab.index:
        if isinstance(best[e], str):
            fmt.loc[e, best[e]] = f"**{tab.loc[e, best[e]]:.3f}**"
    md = fmt.reset_index().to_markdown(index=False, disable_numparse=True)
    cmd = "SCFANPY_DATA_DIR=/tmp/sfpcache nice -n 10 python benchmarks/bench_deepbind.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    seed_note = f"seed {args.seed}, one run (no repeats)"
    if args.ensemble:
        seeds = sorted({f.stem.rsplit("__s", 1)[1] for f in Path(args.ensemble).glob("*__s*.npy")})
        seed_note = (
            f"one run per seed (seeds {', '.join(seeds)}; the seed sets the shuffles, the validation pairs "
            f"and the initialisation; the 6-mer LR row is seed {args.seed}'s)"
        )
    lr_note = " (divided by 10 after each epoch without a better validation AUPRC)" if args.reduce_lr else ""
    text = f"""## DeepBind ENCODE experiments: test AUC

Command: `{cmd.strip()}`

Training: the `_AC` positives of each experiment (at most {args.max_pos}, sampled at random) plus one
exact dinucleotide shuffle of each (`sfp.pp.dinucleotide_shuffle`){"" if args.no_rc_augment else ", and the reverse complement of every training window"};
10% of the pairs for early stopping (validation AUPRC, patience {args.patience}); at most {args.epochs} epochs, batch {args.batch_size}, Adam lr 1e-3{lr_note},
{seed_note}. Test: the `_B` set (500 peaks + 500 shuffles from DeepBind's authors);
probabilities averaged over both strands. DeepBind* is the published AUC (Alipanahi et al. 2015,
supplementary table), trained on all positives with model selection by cross-validation: these caps
favour DeepBind*. Architectures at window 101 with their published widths (scFAN pools by 2, not 4, to
fit 101 bp); DanQ is the published DanQ-JASPAR variant (first-layer filters start from JASPAR motifs,
the experiment's TF first: `DANQ(..., jaspar_init=True)`). The 6-mer LR row is a logistic regression on reverse-complement-collapsed 6-mer counts.
Bold: best of the models run here.

{md}

Total CPU training time ({args.threads} torch thread(s)): {", ".join(f"{k} {v / 60:.1f} min" for k, v in secs.items())}.
"""
    print(text)
    if not args.no_doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _seqbench_doc import write_section

        print("written to", write_section(args.section, text))
    return tab


if __name__ == "__main__":
    main()
