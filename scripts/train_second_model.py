"""Train the second shipped TF-binding model on every labelled real data set in ``shared/data``.

One multi-task CNN on 101-bp one-hot DNA (the DeepBind width), one output per TF, masked BCE (a window
is labelled only for the TFs its source speaks about). Data (``--data-dir``, default ``../shared/data``):

================================  ==========================================  ==============================
source                            positives                                   negatives
================================  ==========================================  ==============================
DeepBind ENCODE (10 experiments)  ``*_AC`` peaks (<= ``--max-pos`` each)      one dinucleotide shuffle each
BertSNR (137 TFs)                 JASPAR-site windows (<= ``--bertsnr-pairs``)  their dinucleotide shuffles
Zeng 2016 CTCF                    peaks (<= ``--max-pos``)                    their dinucleotide shuffles
lsgkm NFE2 (GM12878)              peaks                                       **genomic**, GC-matched
janggu Oct4 / MafK                peaks (POU5F1 / MAFK)                       **genomic**: the other TF's
                                                                              peaks; plus one shuffle each
ENCODE-DREAM (4 cell lines)       summits of peaks on the two hg19 blocks     **genomic**: block windows
                                  with sequence (chr20:9.995-11.095 Mb,       >= 200 bp from any peak of
                                  chr22:20-21 Mb)                             any TF in any cell line
kipoi JUND HepG2 chr22            the 6 bound intervals with sequence         the 23 unbound ones (genomic)
================================  ==========================================  ==============================

Splits come from the training files only: DeepBind ``_AC`` -> 90% train / 10% valid, its ``_B`` sets
(shared/data, DeepBind's own test sets; not the project's holdout) -> test; BertSNR pairs 80/10/10 per
TF; Zeng CTCF peaks on chr8 and chr9 -> test, its ``valid.fa`` -> valid, the rest train; lsgkm and
janggu ``*test*`` files -> test, 10% of the rest valid; ENCODE-DREAM chr20 block -> test, chr22 block
train (10% valid). Each training window is put on a random strand. Early stopping: mean validation
AUPRC. ``/work/shared/holdout`` is read only by ``--evaluate-holdout``, once, after the model is saved;
it plays no part in training, early stopping or the per-TF model choice (which reads the validation
AUROCs of the model and of the JASPAR motif model, written to the model card).

Run (training about 40 min on one CPU thread)::

    SCFANPY_DATA_DIR=/tmp/sfp_h4 nice -n 10 python scripts/train_second_model.py
    SCFANPY_DATA_DIR=/tmp/sfp_h4 nice -n 10 python scripts/train_second_model.py --evaluate-holdout

Writes ``src/scfanpy/models/weights/<name>/model.pt`` (float16), ``model_card.json`` and
``model_card.md``; the second command adds the holdout table to both cards.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from train_pretrained import ARCH  # the first shipped model's CNN (``--arch scfan``)

ROOT = Path(__file__).resolve().parents[1]
NAME = "danq_multi158"
WINDOW = 101
BLOCKS = {"chr20": (9_995_000, 11_095_000), "chr22": (20_000_000, 21_000_000)}
MIN_VALID_POS = 10  # fewer validation positives than this: no evidence to prefer the deep model


@dataclass
class Block:
    """Windows from one source: codes ``(n, WINDOW)``, labels (n x TFs, NaN = not labelled), split."""

    source: str
    codes: np.ndarray
    labels: pd.DataFrame
    split: np.ndarray
    negatives: str


def fixed(seqs) -> np.ndarray:
    """Sequences (strings) -> uint8 codes ``(n, WINDOW)``, centred, cropped or padded with N."""
    from scfanpy._torch import fit_window
    from scfanpy.genome import encode_sequence

    out = np.full((len(seqs), WINDOW), 4, dtype=np.uint8)
    for i, s in enumerate(seqs):
        out[i] = fit_window(encode_sequence(s)[None], WINDOW)[0]
    return out


def rc(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of uint8 codes (N stays N)."""
    return np.array([3, 2, 1, 0, 4], dtype=np.uint8)[codes[:, ::-1]]


def _single(source, tf, codes, y, split, negatives) -> Block:
    return Block(source, codes, pd.DataFrame({tf: np.asarray(y, np.float32)}), np.asarray(split), negatives)


def _random_split(n: int, rng, valid: float = 0.1, test: float = 0.0) -> np.ndarray:
    u = rng.random(n)
    return np.where(u < test, "test", np.where(u < test + valid, "valid", "train")).astype(object)


def _read_fasta(path: Path) -> dict[str, str]:
    from scfanpy.genome import read_fasta

    return read_fasta(path)


def load_deepbind(max_pos: int, rng) -> list[Block]:
    """The 10 DeepBind ENCODE experiments: ``_AC`` positives + shuffles (train/valid), ``_B`` test."""
    import scfanpy as sfp

    out = []
    for exp in sfp.datasets.deepbind_experiments():
        tf = exp.split("_")[0]
        ac = sfp.datasets.deepbind_encode(exp, "AC")
        pos = ac.loc[ac["Bound"] == 1, "seq"].drop_duplicates().to_numpy()
        if len(pos) > max_pos:
            pos = pos[np.sort(rng.choice(len(pos), size=max_pos, replace=False))]
        pc = fixed(pos)
        sp = _random_split(len(pc), rng)
        codes = np.concatenate([pc, sfp.pp.dinucleotide_shuffle(pc, rng)])
        y = np.r_[np.ones(len(pc)), np.zeros(len(pc))]
        out.append(_single(f"deepbind:{exp}", tf, codes, y, np.r_[sp, sp], "dinucleotide shuffles"))
        b = sfp.datasets.deepbind_encode(exp, "B")
        test = fixed(b["seq"].tolist())
        out.append(
            _single(f"deepbind:{exp}", tf, test, b["Bound"], ["test"] * len(b), "dinucleotide shuffles")
        )
    return out


def load_bertsnr(max_pairs: int, rng) -> list[Block]:
    """BertSNR: per TF at most ``max_pairs`` (site, shuffle) pairs, split 80/10/10 by pair."""
    import scfanpy as sfp

    out = []
    for tf in sfp.datasets.bertsnr_tfs():
        d = sfp.datasets.bertsnr(tf)
        seq, b = d["seq"].to_numpy(), d["bound"].to_numpy()
        n_pairs = len(d) // 2
        ok = (b[0 : 2 * n_pairs : 2] == 1) & (b[1 : 2 * n_pairs : 2] == 0)
        pick = rng.permutation(np.flatnonzero(ok))[:max_pairs]
        rows = np.stack([2 * pick, 2 * pick + 1], 1).ravel()
        sp = np.repeat(_random_split(len(pick), rng, valid=0.1, test=0.1), 2)
        out.append(_single("bertsnr", tf, fixed(seq[rows]), b[rows], sp, "dinucleotide shuffles"))
    return out


def load_zeng_ctcf(data: Path, max_pos: int, rng) -> list[Block]:
    """Zeng 2016 CTCF: ``test.fa`` peaks + shuffles (chr8/chr9 test), ``valid.fa`` validation."""
    d = data / "sequences" / "keras_genomics_ctcf"
    out = []
    for fa, tg in (("test.fa", "test.target"), ("valid.fa", "valid.target")):
        seqs = _read_fasta(d / fa)
        y = np.loadtxt(d / tg, dtype=np.float32)[:, 0]  # "1 0" = bound
        names = list(seqs)
        if fa == "valid.fa":
            sp = np.array(["valid"] * len(names), dtype=object)
        else:
            chrom = np.array([n.split(":")[0] for n in names])
            sp = np.where(np.isin(chrom, ["chr8", "chr9"]), "test", "train").astype(object)
            keep = np.flatnonzero(sp == "test")
            train = np.flatnonzero(sp == "train")
            peaks = np.array([n.split("_")[0] for n in names])
            tp = np.unique(peaks[train])
            if len(tp) > max_pos:  # a peak and its shuffle stay together
                tp = rng.choice(tp, size=max_pos, replace=False)
            keep = np.sort(np.r_[keep, train[np.isin(peaks[train], tp)]])
            names, y, sp = [names[i] for i in keep], y[keep], sp[keep]
        codes = fixed([seqs[n] for n in names])
        out.append(_single("zeng2016_ctcf", "CTCF", codes, y, sp, "dinucleotide shuffles"))
    return out


def load_nfe2(data: Path, rng) -> list[Block]:
    """lsgkm NFE2 (GM12878): peaks vs real GC-matched genomic negatives; its test files -> test."""
    d = data / "sequences" / "lsgkm_nfe2_gm12878"
    stem = "wgEncodeSydhTfbsGm12878Nfe2hStdAlnRep0"
    out = []
    for part in ("tr", "test"):
        pos = list(_read_fasta(d / f"{stem}.{part}.fa").values())
        neg = list(_read_fasta(d / f"{stem}.neg.{part}.fa").values())
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        sp = _random_split(len(y), rng) if part == "tr" else np.array(["test"] * len(y), dtype=object)
        out.append(_single("lsgkm_nfe2", "NFE2", fixed(pos + neg), y, sp, "genomic (GC-matched)"))
    return out


def load_janggu(data: Path, rng) -> list[Block]:
    """janggu Oct4 / MafK peaks: each TF's peaks are genomic negatives of the other; + one shuffle each."""
    import scfanpy as sfp

    d = data / "sequences" / "janggu"
    out = []
    for part, test in (("", False), ("_test", True)):
        oct4 = fixed(list(_read_fasta(d / f"sample{part}.fa").values()))
        mafk = fixed(list(_read_fasta(d / f"sample2{part}.fa").values()))
        codes = np.concatenate([oct4, mafk])
        n1, n2 = len(oct4), len(mafk)
        lab = pd.DataFrame(
            {"POU5F1": np.r_[np.ones(n1), np.zeros(n2)], "MAFK": np.r_[np.zeros(n1), np.ones(n2)]}
        )
        sp = np.array(["test"] * len(codes), dtype=object) if test else _random_split(len(codes), rng)
        out.append(Block("janggu", codes, lab.astype(np.float32), sp, "genomic (the other TF's peaks)"))
        shuf = sfp.pp.dinucleotide_shuffle(codes, rng)
        lab0 = pd.DataFrame(
            {
                "POU5F1": np.r_[np.zeros(n1), np.nan * np.ones(n2)],
                "MAFK": np.r_[np.nan * np.ones(n1), np.zeros(n2)],
            }
        )
        out.append(Block("janggu", shuf, lab0.astype(np.float32), sp.copy(), "dinucleotide shuffles"))
    return out


def _block_codes() -> dict[str, tuple[int, np.ndarray]]:
    """The real hg19 sequence here: ``{chrom: (0-based start, uint8 codes)}`` of the two blocks."""
    import scfanpy as sfp
    from scfanpy.genome import encode_sequence

    s20, e20 = BLOCKS["chr20"]
    c20 = sfp.Genome(sfp.datasets.hg19_chr20()).fetch_codes("chr20", s20, e20)
    (seq22,) = _read_fasta(sfp.datasets.hg19_chr22_block()).values()  # record '22:20000001-21000000'
    return {"chr20": (s20, np.asarray(c20, np.uint8)), "chr22": (BLOCKS["chr22"][0], encode_sequence(seq22))}


def _dream_peaks() -> pd.DataFrame:
    """ENCODE-DREAM peaks of every readable (cell line, TF) on the two blocks, with a ``centre``."""
    import scfanpy as sfp

    frames = []
    for _, row in sfp.datasets.encode_dream_index().iterrows():
        try:
            frames.append(sfp.datasets.encode_dream_peaks(row["cell_line"], row["tf"]))
        except (OSError, EOFError, ValueError) as e:  # H1-hESC ATF2 upstream is a path, not a gzip
            print(f"ENCODE-DREAM {row['cell_line']} {row['tf']}: skipped ({type(e).__name__})", flush=True)
    p = pd.concat(frames, ignore_index=True)
    inside = np.zeros(len(p), bool)
    for chrom, (s, e) in BLOCKS.items():
        inside |= (
            (p["chr"] == chrom).to_numpy()
            & (p["start"] >= s + 100).to_numpy()
            & (p["end"] <= e - 100).to_numpy()
        )
    p = p[inside].copy()
    p["centre"] = np.where(p["summit"] >= 0, p["start"] + p["summit"], (p["start"] + p["end"]) // 2)
    return p


def _dream_labels(chrom: str, starts: np.ndarray, peaks: pd.DataFrame, tfs: list[str], margin: int = 200):
    """Labels of windows ``[start, start + WINDOW)``: 1 centre in a peak, NaN peak near, else 0."""
    centre = starts + WINDOW // 2
    lab = np.zeros((len(starts), len(tfs)), np.float32)
    for j, tf in enumerate(tfs):
        q = peaks[(peaks["chr"] == chrom) & (peaks["tf"] == tf)]
        ps, pe = q["start"].to_numpy()[None], q["end"].to_numpy()[None]
        inside = ((ps <= centre[:, None]) & (centre[:, None] < pe)).any(1)
        near = ((ps < starts[:, None] + WINDOW + margin) & (pe > starts[:, None] - margin)).any(1)
        lab[:, j] = np.where(inside, 1.0, np.where(near, np.nan, 0.0))
    return lab


def load_encode_dream(data: Path, rng, neg_ratio: float = 2.0) -> list[Block]:
    """Summit windows of ENCODE-DREAM peaks on the two hg19 blocks + genomic negatives; JUND (kipoi)."""
    peaks = _dream_peaks()
    tfs = sorted(peaks["tf"].unique())
    out = []
    for chrom, (off, codes) in _block_codes().items():
        q = peaks[peaks["chr"] == chrom]
        pos = np.unique(q["centre"].to_numpy() - WINDOW // 2)
        s, e = BLOCKS[chrom]
        cand = rng.integers(s + 300, e - WINDOW - 300, size=20 * len(pos))
        far = ~(
            (q["start"].to_numpy()[None] < cand[:, None] + WINDOW + 200)
            & (q["end"].to_numpy()[None] > cand[:, None] - 200)
        ).any(1)
        neg = cand[far][: int(neg_ratio * len(pos))]
        starts = np.r_[pos, neg]
        win = np.stack([codes[st - off : st - off + WINDOW] for st in starts])
        ok = (win == 4).mean(1) <= 0.1
        starts, win = starts[ok], win[ok]
        lab = pd.DataFrame(_dream_labels(chrom, starts, q, tfs), columns=tfs)
        sp = (
            np.array(["test"] * len(starts), dtype=object)
            if chrom == "chr20"
            else _random_split(len(starts), rng)
        )
        out.append(Block(f"encode_dream:{chrom}", win, lab, sp, "genomic (block windows away from peaks)"))
    j = pd.read_csv(
        data / "chip" / "kipoi_jund_hepg2_chr22" / "chr22.101bp.2000_intervals.JUND.HepG2.tsv",
        sep="\t",
        header=None,
        names=["chr", "start", "end", "y"],
    )
    off, codes = _block_codes()["chr22"]
    j = j[(j["start"] >= off) & (j["end"] <= off + len(codes))]
    win = np.stack([codes[st - off : st - off + WINDOW] for st in j["start"]])
    out.append(_single("kipoi_jund_hepg2", "JUND", win, j["y"].to_numpy(), ["train"] * len(j), "genomic"))
    return out


# ------------------------------------------------------------------------------------------ assemble
def load_all(data: Path, args, rng) -> list[Block]:
    """Every source, in a fixed order (the order of the model's outputs follows it)."""
    blocks = []
    for what, fn in (
        ("DeepBind ENCODE", lambda: load_deepbind(args.max_pos, rng)),
        ("BertSNR", lambda: load_bertsnr(args.bertsnr_pairs, rng)),
        ("Zeng CTCF", lambda: load_zeng_ctcf(data, args.max_pos, rng)),
        ("lsgkm NFE2", lambda: load_nfe2(data, rng)),
        ("janggu Oct4/MafK", lambda: load_janggu(data, rng)),
        ("ENCODE-DREAM + kipoi JUND", lambda: load_encode_dream(data, rng)),
    ):
        t0 = time.perf_counter()
        new = fn()
        print(
            f"{what}: {sum(len(b.codes) for b in new)} windows ({time.perf_counter() - t0:.0f}s)", flush=True
        )
        blocks += new
    return blocks


def assemble(blocks: list[Block], rng):
    """One region AnnData: codes, labels (NaN = not labelled), split, source; train rows: random strand."""
    import anndata as ad

    tfs = list(dict.fromkeys(t for b in blocks for t in b.labels.columns))
    n = sum(len(b.codes) for b in blocks)
    labels = np.full((n, len(tfs)), np.nan, dtype=np.float32)
    lo = 0
    for b in blocks:
        cols = [tfs.index(t) for t in b.labels.columns]
        labels[lo : lo + len(b.codes), cols] = b.labels.to_numpy(np.float32)
        lo += len(b.codes)
    codes = np.concatenate([b.codes for b in blocks]).astype(np.uint8)
    split = np.concatenate([np.asarray(b.split, dtype=object) for b in blocks])
    flip = (split == "train") & (rng.random(n) < 0.5)
    codes[flip] = rc(codes[flip])
    source = np.concatenate([[b.source.split(":")[0]] * len(b.codes) for b in blocks])
    idx = pd.Index([f"w{i}" for i in range(n)])
    a = ad.AnnData(
        obs=pd.DataFrame({"split": pd.Categorical(split), "source": pd.Categorical(source)}, index=idx)
    )
    a.obsm["dna_code"] = codes
    a.obsm["labels"] = pd.DataFrame(labels, index=idx, columns=pd.Index(tfs))
    a.uns["tf_names"] = tfs
    return a


def data_summary(blocks: list[Block]) -> dict:
    """Windows and labelled positives per source and split (for the model card)."""
    rows = []
    for b in blocks:
        for sp in np.unique(b.split):
            m = np.asarray(b.split) == sp
            lab = b.labels.to_numpy()[m]
            rows.append((b.source.split(":")[0], sp, int(m.sum()), int(np.nansum(lab == 1)), b.negatives))
    df = pd.DataFrame(rows, columns=["source", "split", "windows", "positives", "negatives"])
    g = df.groupby(["source", "split"], sort=False).agg(
        {"windows": "sum", "positives": "sum", "negatives": "first"}
    )
    out: dict = {}
    for (src, sp), r in g.iterrows():
        out.setdefault(src, {"negatives": r["negatives"]})[sp] = {
            "windows": int(r["windows"]),
            "positives": int(r["positives"]),
        }
    return out


# ------------------------------------------------------------------------------------------- train
ARCHS = {
    # the first shipped model's CNN ('valid' padding, PyTorch batch norm) at the DeepBind width
    "scfan": ("SCFAN", ARCH),
    # DanQ-JASPAR, narrowed to stay a few MB: half of the filters start as the TFs' JASPAR motifs
    "danq": ("DANQ", {"n_filters": 384, "filter_width": 24, "pool": 13, "lstm_hidden": 128, "n_dense": 256}),
}


def build_model(regions, arch: str, seed: int):
    """The untrained model of ``arch`` on the set-up regions (DanQ: JASPAR motifs of its TFs first)."""
    import second_model_card as smc

    import scfanpy as sfp

    cls_name, kw = ARCHS[arch]
    cls = getattr(sfp.models, cls_name)
    cls.setup_anndata(regions)
    if cls_name != "DANQ":
        return cls(regions, random_state=seed, **kw)
    allm = sfp.datasets.jaspar_motifs()
    names = [smc.jaspar_name(t, list(allm)) for t in regions.uns["tf_names"]]
    motifs = {n: np.asarray(allm[n]) for n in dict.fromkeys(n for n in names if n)}
    motifs = dict(list(motifs.items())[: kw["n_filters"] // 2])
    return cls(regions, random_state=seed, jaspar_init=motifs, **kw)


def save_half(model, out: Path) -> None:
    """scvi-tools ``save``, then the floating-point tensors stored as float16, without the split's indices.

    The region indices of the training run (``train_indices_`` ...: 1.9 MB of int64) say nothing to a
    model without data; they are dropped to keep the shipped file small.
    """
    import torch

    model.save(out, overwrite=True)
    f = out / "model.pt"
    blob = torch.load(f, map_location="cpu", weights_only=False)
    for k in ("train_indices_", "validation_indices_", "test_indices_"):
        blob["attr_dict"][k] = None
    sd = blob["model_state_dict"]
    blob["model_state_dict"] = {
        k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in sd.items()
    }
    torch.save(blob, f)


def train(args) -> None:
    """Build the data, train, measure on the own validation and test splits, save weights and card."""
    import logging

    import second_model_card as smc
    import torch

    torch.set_num_threads(args.threads)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    blocks = load_all(Path(args.data_dir), args, rng)
    regions = assemble(blocks, rng)
    counts = regions.obs["split"].value_counts().to_dict()
    print(
        f"{regions.n_obs} windows, {len(regions.uns['tf_names'])} TFs, {counts} ({time.perf_counter() - t0:.0f}s)",
        flush=True,
    )
    model = build_model(regions, args.arch, args.seed)
    t1 = time.perf_counter()
    mins = int(args.max_minutes)
    model.train(
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        early_stopping_patience=args.patience,
        plan_kwargs={"lr": args.lr},
        random_state=args.seed,
        enable_progress_bar=False,
        max_time={"minutes": mins, "seconds": int(round((args.max_minutes - mins) * 60))},
    )
    train_s = time.perf_counter() - t1
    print(model.history, flush=True)
    valid = smc.split_metrics(model, regions, "valid")
    test = smc.split_metrics(model, regions, "test")
    choice = smc.choose(valid)
    out = Path(args.out)
    save_half(model, out)
    cmd = "SCFANPY_DATA_DIR=/tmp/sfp_h4 nice -n 10 python scripts/train_second_model.py " + " ".join(
        shlex.quote(a) for a in (args.argv or [])
    )
    card = smc.make_card(args, model, blocks, valid, test, choice, train_s, cmd.strip())
    (out / "model_card.json").write_text(json.dumps(card, indent=1))
    (out / "model_card.md").write_text(smc.card_markdown(card))
    allv = test[test["source"] == "all"]
    print(allv.to_string(), flush=True)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.2f} MB) in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)


def main(argv=None):

    import second_model_card as smc

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=list(ARCHS), default="danq")
    ap.add_argument("--max-pos", type=int, default=6000, help="positives per DeepBind experiment / Zeng CTCF")
    ap.add_argument("--bertsnr-pairs", type=int, default=400, help="(site, shuffle) pairs per BertSNR TF")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--max-minutes", type=float, default=38.0, help="wall-time cap on training")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--patience", type=int, default=3, help="early-stopping patience (epochs)")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--holdout-dir", default=str(ROOT.parent / "shared" / "holdout" / "deepbind_encode"))
    ap.add_argument("--out", default=str(ROOT / "src" / "scfanpy" / "models" / "weights" / NAME))
    ap.add_argument(
        "--evaluate-holdout", action="store_true", help="evaluate the saved model on the holdout and exit"
    )
    ap.add_argument("--card-only", action="store_true", help="rewrite model_card.md from model_card.json")
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    import scfanpy as sfp

    sfp.datasets.seed_cache(args.data_dir)
    if args.evaluate_holdout:
        return smc.evaluate_holdout(args)
    if args.card_only:
        card = json.loads((Path(args.out) / "model_card.json").read_text())
        return (Path(args.out) / "model_card.md").write_text(smc.card_markdown(card))
    return train(args)


if __name__ == "__main__":
    main()
