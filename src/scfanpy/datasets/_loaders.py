"""Loaders of real public data, each returning a ready AnnData or DataFrame.

Every file is fetched by :func:`scfanpy.datasets.fetch` from its upstream URL pinned to a commit and
checked by sha256 (see ``registry.tsv``); nothing here is bundled with the package.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from anndata.utils import make_index_unique

from .. import _logging as logg
from .._constants import ACTIVITY_IN_X
from .._registry import fetch, keys


def _read_rda(path):
    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdata warns about every Bioconductor class it leaves raw
        return rdata.read_rda(str(path))


def _granges_to_var(gr) -> pd.DataFrame:
    """A GRanges (as parsed by rdata) to a var DataFrame with 0-based starts."""
    chrom = np.repeat(np.asarray(gr.seqnames.values, dtype=object), np.asarray(gr.seqnames.lengths))
    start1 = np.asarray(gr.ranges.start, dtype=np.int64)  # R: 1-based inclusive
    width = np.asarray(gr.ranges.width, dtype=np.int64)
    start = start1 - 1
    end = start + width
    names = [f"{c}:{s}-{e}" for c, s, e in zip(chrom, start, end)]
    return pd.DataFrame(
        {"chr": chrom.astype(str), "start": start, "end": end}, index=pd.Index(names, name=None)
    )


# GEO sample-id prefixes of the Schep 2017 subset and the study each comes from
_SCHEP_SOURCES = {
    "GSM1596": "Buenrostro2015",
    "GSM1597": "Buenrostro2015",
    "GSM1916": "Corces2016",
    "GSM2254": "Corces2016",
    "GSM2255": "Corces2016",
    "NEW": "unpublished_K562",
}


def schep2017() -> AnnData:
    """Schep et al. 2017 (chromVAR) scATAC subset: 600 cells x 5,036 hg19 peaks, 12 labels x 50.

    Cells from Buenrostro et al. 2015 and Corces et al. 2016 (two source studies: a real batch) as
    curated by the ATACCoGAPS package (FertigLab/ATACCoGAPS, ``data/``).

    Returns
    -------
    adata : anndata.AnnData
        Cells x peaks, sparse integer counts in ``X``.
    adata.obs['cell_type'], adata.obs['sample'], adata.obs['source'], adata.obs['n_fragments'] : pandas.Series
        12 cell-type labels, the GEO id, the study (from the GEO id prefix) and each cell's total count.
    adata.var['chr'], adata.var['start'], adata.var['end'] : pandas.Series
        Peak coordinates (0-based start).

    Examples
    --------
    >>> import scfanpy as sfp
    >>> adata = sfp.datasets.schep2017()  # doctest: +SKIP
    >>> adata.shape  # doctest: +SKIP
    (600, 5036)
    """
    counts = _read_rda(fetch("scatac/schep2017/subsetSchepData.rda"))["subsetSchepData"]
    gr = _read_rda(fetch("scatac/schep2017/schepGranges.rda"))["schepGranges"]
    labels = _read_rda(fetch("scatac/schep2017/schepCellTypes.rda"))["schepCellTypes"]
    cells = np.asarray(counts.coords["dim_1"].values).astype(str)
    X = sp.csr_matrix(np.asarray(counts.values, dtype=np.float32).T)
    var = _granges_to_var(gr)
    prefix = np.array([c[:7] if c.startswith("GSM") else c[:3] for c in cells])
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(np.asarray(labels).astype(str), categories=list(labels.categories)),
            "sample": cells,
            "source": pd.Categorical([_SCHEP_SOURCES.get(p, "unknown") for p in prefix]),
            "n_fragments": np.asarray(X.sum(1)).ravel(),
        },
        index=make_index_unique(pd.Index(cells)),
    )
    adata = AnnData(X=X, obs=obs, var=var)
    adata.uns["dataset"] = {
        "name": "schep2017",
        "genome": "hg19",
        "source": "FertigLab/ATACCoGAPS@50c1b481 data/",
    }
    return adata


def granja2019() -> AnnData:
    """Granja et al. 2019 10x bone-marrow scATAC subset: 600 cells x 5,000 hg19 peaks, 6 labels x 100.

    As packaged by epiCHAOS (CompEpigen/epiCHAOS, ``data/hemato_atac.rda``).

    Returns
    -------
    adata : anndata.AnnData
        Cells x peaks, sparse counts in ``X``.
    adata.obs['cell_type'] : pandas.Categorical
        From ``BioClassification`` without its number, e.g. ``HSC``.
    adata.obs['BioClassification'], adata.obs['FRIP'], adata.obs['TotalReads'], adata.obs['Group'], adata.obs['n_fragments'] : pandas.Series
        The published annotations (``Group``: sample) and each cell's total count.
    adata.obsm['X_umap_original'] : numpy.ndarray
        The published UMAP.
    adata.var['chr'], adata.var['start'], adata.var['end'] : pandas.Series
        Peak coordinates (0-based start).
    """
    h = _read_rda(fetch("scatac/granja2019/hemato_atac.rda"))["hemato_atac"]
    c = h["counts"]
    n_peaks, n_cells = (int(x) for x in c.Dim)
    X = sp.csc_matrix(
        (np.asarray(c.x, dtype=np.float32), np.asarray(c.i), np.asarray(c.p)), shape=(n_peaks, n_cells)
    )
    X = X.T.tocsr()
    meta = h["meta"].listData
    cells = np.asarray(h["meta"].rownames).astype(str)
    obs = pd.DataFrame(index=pd.Index(cells))
    for k, v in meta.items():
        vals = np.asarray(getattr(v, "values", v))
        obs[str(k)] = vals
    bio = obs["BioClassification"].astype(str)
    obs["cell_type"] = pd.Categorical(bio.str.replace(r"^\d+_", "", regex=True))
    obs["Group"] = obs["Group"].astype("category")
    obs["n_fragments"] = np.asarray(X.sum(1)).ravel()
    umap = obs[["UMAP1", "UMAP2"]].to_numpy(float)
    obs = obs.drop(columns=["UMAP1", "UMAP2"])
    var = _granges_to_var(h["ranges"])
    adata = AnnData(X=X, obs=obs, var=var)
    adata.obsm["X_umap_original"] = umap
    adata.uns["dataset"] = {
        "name": "granja2019",
        "genome": "hg19",
        "source": "CompEpigen/epiCHAOS@e6e7e688 data/hemato_atac.rda",
    }
    return adata


# ---------------------------------------------------------------------------------------- sequences
def deepbind_experiments() -> list[str]:
    """Names of the DeepBind ENCODE experiments available (file stems without ``_AC``/``_B``)."""
    ks = keys("sequences/deepbind_encode/encode/")
    return sorted({k.rsplit("/", 1)[1].rsplit("_", 1)[0] for k in ks})


def deepbind_encode(experiment: str, split: str = "B") -> pd.DataFrame:
    """One DeepBind ENCODE ChIP-seq experiment (Alipanahi et al. 2015): 101-bp sequences and labels.

    Parameters
    ----------
    experiment
        Experiment name, see :func:`deepbind_experiments` (a unique prefix such as ``'REST'`` works).
    split
        ``'AC'`` (training positives only; make negatives by dinucleotide shuffling) or ``'B'`` (test:
        500 peaks + 500 dinucleotide shuffles).

    Returns
    -------
    table : pandas.DataFrame
        Columns ``FoldID``, ``EventID``, ``seq``, ``Bound``.
    """
    split = split.upper()
    if split not in {"AC", "B"}:
        raise ValueError(f"split must be 'AC' or 'B', got {split!r}")
    exps = deepbind_experiments()
    match = [e for e in exps if e == experiment] or [e for e in exps if e.startswith(experiment)]
    if len(match) != 1:
        raise KeyError(f"experiment {experiment!r} matches {match or 'nothing'}; available: {exps}")
    path = fetch(f"sequences/deepbind_encode/encode/{match[0]}_{split}.seq.gz")
    return pd.read_csv(path, sep="\t", compression="gzip")


def deepbind_published_auc() -> pd.DataFrame:
    """DeepBind's published per-experiment test AUCs (Alipanahi et al. 2015, supplementary table).

    Returns
    -------
    table : pandas.DataFrame
        Indexed by experiment name (``TF_CellLine_Antibody_Lab``, matching :func:`deepbind_experiments`),
        columns ``DeepBind*``, ``DeepBind``, ``MEME-SUM`` and the parsed ``TF`` and ``cell``.
    """
    raw = pd.read_csv(
        fetch("reference/deepbind_published_auc/encodeaucs_deepbind_suppl.csv"), header=None, dtype=str
    )
    # the sheet has a multi-line title; the table starts where column 1 holds experiment names
    head_row = raw.index[raw[1].astype(str).str.strip().eq("TF_CellLine_Antibody_Lab")]
    start = int(head_row[0]) + 1 if len(head_row) else 2
    header = raw.iloc[start - 1].astype(str).str.strip().tolist()
    tab = raw.iloc[start:, 1:9].copy()  # the main table; side tables (by TF, by cell line) follow
    tab.columns = header[1:9]
    tab = tab[
        tab["TF_CellLine_Antibody_Lab"].notna() & tab["TF_CellLine_Antibody_Lab"].str.contains("_", na=False)
    ]
    out = pd.DataFrame(index=pd.Index(tab["TF_CellLine_Antibody_Lab"].str.strip(), name="experiment"))
    for col in ("DeepBind*", "DeepBind", "MEME-SUM"):
        if col in tab.columns:
            out[col] = pd.to_numeric(tab[col].to_numpy(), errors="coerce")
    out = out.dropna(subset=["DeepBind*"])
    out["TF"] = out.index.str.split("_").str[0]
    out["cell"] = out.index.str.split("_").str[1]
    return out[~out.index.duplicated()]


def bertsnr_tfs() -> list[str]:
    """TFs available in the BertSNR multi-TF set."""
    return sorted({k.split("/")[3] for k in keys("sequences/bertsnr/ChIP-seq/")})


def _bertsnr_tfs(tf: str | list[str] | None) -> list[str]:
    tfs = bertsnr_tfs() if tf is None else ([tf] if isinstance(tf, str) else list(tf))
    avail = set(bertsnr_tfs())
    bad = [t for t in tfs if t not in avail]
    if bad:
        raise KeyError(f"TF(s) {bad[:10]} not in the BertSNR set; available: {sorted(avail)}")
    return tfs


def _bertsnr_bed(t: str) -> pd.DataFrame:
    """One TF's site BED with its ``assembly`` (from the site names, ``hg19_...`` or ``hg38_...``)."""
    bed = pd.read_csv(
        fetch(f"sequences/bertsnr/JASPAR_bed_hg19/{t}.bed"),
        sep="\t",
        header=None,
        usecols=[0, 1, 2, 3, 5],
        names=["chr", "start", "end", "name", "strand"],
        dtype={"chr": str, "name": str},
    )
    prefix = bed["name"].str.partition("_")[0]
    builds = set(prefix.unique())
    if not builds <= {"hg19", "hg38"} or len(builds) != 1:
        raise ValueError(
            f"BertSNR {t}: site names carry genome builds {sorted(builds)[:5]}, expected one of hg19/hg38"
        )
    bed.insert(0, "tf", t)
    bed["assembly"] = builds.pop()
    return bed


def bertsnr_sites(tf: str | list[str] | None = None) -> pd.DataFrame:
    """Coordinates of the BertSNR JASPAR sites, with the genome build of each TF's file.

    The upstream folder is named ``JASPAR_bed_hg19``, but the site files of 84 of the 137 TFs are in
    **hg38** coordinates (their site names start ``hg38_``); only 53 are hg19. Use each row's
    ``assembly`` before placing a site on a genome. Line ``i`` of a TF's file is the site of its
    ``i``-th positive in :func:`bertsnr` for 113 TFs; 24 (all hg38) have 1-12 extra lines.

    Parameters
    ----------
    tf
        One TF, a list, or ``None`` for all 137.

    Returns
    -------
    sites : pandas.DataFrame
        Columns ``tf``, ``chr``, ``start`` (0-based), ``end``, ``name``, ``strand`` and ``assembly``
        (``'hg19'`` or ``'hg38'``).
    """
    return pd.concat([_bertsnr_bed(t) for t in _bertsnr_tfs(tf)], ignore_index=True)


def bertsnr(tf: str | list[str] | None = None) -> pd.DataFrame:
    """BertSNR ChIP-seq TF-binding-site sequences (lhy0322/BertSNR): 100-bp windows and shuffles.

    Positives are real human 100-bp windows around ChIP-supported JASPAR-2022 sites; each is followed
    by its dinucleotide shuffle as a negative. The sequences are real either way, but their sites'
    coordinates are not all hg19: although the upstream folder is named ``JASPAR_bed_hg19``, 84 of the
    137 TFs' site files are hg38 (53 are hg19). The ``assembly`` column gives each TF's build; the
    coordinates themselves come from ``sfp.datasets.bertsnr_sites``.

    Parameters
    ----------
    tf
        One TF, a list, or ``None`` for all 137 (about 1.8 M rows).

    Returns
    -------
    table : pandas.DataFrame
        Columns ``tf``, ``seq``, ``bound`` (0/1), ``site`` (the 100-character 0/1 per-base site mask)
        and ``assembly`` (genome build of the TF's site coordinates, ``'hg19'`` or ``'hg38'``).
    """
    frames = []
    for t in _bertsnr_tfs(tf):
        seqs = fetch(f"sequences/bertsnr/ChIP-seq/{t}/sequence.txt").read_text().split()
        labels = fetch(f"sequences/bertsnr/ChIP-seq/{t}/label.txt").read_text().split()
        if len(seqs) != len(labels):
            raise ValueError(f"BertSNR {t}: {len(seqs)} sequences but {len(labels)} labels")
        bound = np.array(["1" in lab for lab in labels], dtype=np.int8)
        assembly = _bertsnr_bed(t)["assembly"].iloc[0]
        frames.append(
            pd.DataFrame({"tf": t, "seq": seqs, "bound": bound, "site": labels, "assembly": assembly})
        )
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------- ChIP-seq
_NARROWPEAK = ["chr", "start", "end", "name", "score", "strand", "signal", "p", "q", "summit"]


def encode_dream_peaks(cell_line: str | None = None, tf: str | None = None) -> pd.DataFrame:
    """ENCODE-DREAM conservative IDR ChIP-seq peaks (hg19; chr1, chr8, chr21 withheld by the challenge).

    As distributed with FactorNet (uci-cbcl/FactorNet, ``data/``).

    Parameters
    ----------
    cell_line
        ``'GM12878'``, ``'K562'``, ``'H1-hESC'``, ``'HepG2'`` or ``None`` for all.
    tf
        A TF name or ``None`` for all of the cell line's.

    Returns
    -------
    peaks : pandas.DataFrame
        narrowPeak columns (``chr``, ``start``, ``end``, ..., ``summit``) plus ``cell_line`` and ``tf``.
    """
    avail = encode_dream_index()
    sel = avail
    if cell_line is not None:
        sel = sel[sel["cell_line"] == cell_line]
    if tf is not None:
        sel = sel[sel["tf"] == tf]
    if sel.empty:
        raise KeyError(
            f"no ENCODE-DREAM peaks for cell_line={cell_line!r}, tf={tf!r}; available:\n{avail[['cell_line', 'tf']].to_string()}"
        )
    frames = []
    for key, row in sel.iterrows():
        df = pd.read_csv(fetch(key), sep="\t", header=None, names=_NARROWPEAK, compression="gzip")
        df["cell_line"] = row["cell_line"]
        df["tf"] = row["tf"]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def encode_dream_index() -> pd.DataFrame:
    """Which (cell line, TF) ENCODE-DREAM peak files exist; indexed by registry key."""
    rows = []
    for k in keys("chip/encode_dream/"):
        name = k.rsplit("/", 1)[1]
        if name.startswith("ChIPseq."):
            _, cell, tf = name.split(".")[:3]
            rows.append((k, cell, tf))
    return pd.DataFrame(rows, columns=["key", "cell_line", "tf"]).set_index("key")


def hg19_blacklist() -> pd.DataFrame:
    """The ENCODE hg19 blacklist (DAC consensus excludable regions) as a BED DataFrame."""
    path = fetch("chip/encode_dream/resources/wgEncodeDacMapabilityConsensusExcludable.bed.gz")
    df = pd.read_csv(path, sep="\t", header=None, compression="gzip")
    df = df.iloc[:, :3]
    df.columns = ["chr", "start", "end"]
    return df


# ---------------------------------------------------------------------------------------- scFAN outputs
_SCFAN_MODELS = {"GM12878": ("GM", "GM12878"), "H1": ("H1", "H1ESC"), "K562": ("K562", "K562")}
_SCFAN_DATASETS = {"buenrostro2018": "PBMCs", "corces2016": "Corces"}


def scfan_model_tfs(model: str = "GM12878") -> list[str]:
    """TF list (``chip.txt``) of one of the original scFAN bulk models (GM12878, H1, K562)."""
    if model not in _SCFAN_MODELS:
        raise KeyError(f"model must be one of {sorted(_SCFAN_MODELS)}")
    return fetch(f"reference/scfan/model/{_SCFAN_MODELS[model][1]}/chip.txt").read_text().split()


def scfan_bulk_metrics(model: str = "GM12878") -> pd.DataFrame:
    """Per-TF held-out test metrics (AUC, AUPR, recall, F1) published with scFAN's bulk models."""
    stem = {"GM12878": "GM12878/GM", "H1": "H1ESC/H1", "K562": "K562/K562"}[model]
    return pd.read_csv(fetch(f"reference/scfan/Data/{stem}_TF_all_value.txt"), sep=r"\s+", index_col=0)


def scfan_tf_activity(dataset: str = "buenrostro2018", model: str = "GM12878") -> AnnData:
    """The original scFAN's published per-cell TF activity scores (sperfu/scFAN, ``example/``).

    Parameters
    ----------
    dataset
        ``'buenrostro2018'`` (2,034 bone-marrow cells, 11 FACS labels; the ``PBMCs_dataset`` folder
        upstream) or ``'corces2016'`` (2,210 cells, 21 labels).
    model
        Which pretrained scFAN bulk model scored the cells: ``'GM12878'`` (33 TFs), ``'H1'`` (31),
        ``'K562'`` (60).

    Returns
    -------
    adata : anndata.AnnData
        Cells x TFs, the published scores in ``X`` (each row sums to 1).
    adata.obs['cell_type'] : pandas.Series
        The published labels.
    adata.obsm['X_tsne_scfan'] : numpy.ndarray
        The published t-SNE.
    """
    if dataset not in _SCFAN_DATASETS:
        raise KeyError(f"dataset must be one of {sorted(_SCFAN_DATASETS)}")
    if model not in _SCFAN_MODELS:
        raise KeyError(f"model must be one of {sorted(_SCFAN_MODELS)}")
    d = _SCFAN_DATASETS[dataset]
    short = _SCFAN_MODELS[model][0]
    rd = _read_rda(
        fetch(f"reference/scfan/example/{d}_dataset/TF_activity_score_{d}_pretrained_using_{short}.Rdata")
    )
    X = np.asarray(next(iter(rd.values())), dtype=np.float64)
    # PBMCs labels are an R write.table (header "x", quoted row names); Corces labels are bare lines
    lines = fetch(f"reference/scfan/example/{d}_dataset/label_{d}_dataset.txt").read_text().splitlines()
    rows = [ln.replace('"', "").split() for ln in lines if ln.strip()]
    if rows and rows[0] == ["x"]:
        rows = rows[1:]
    lab = np.array([r[-1] for r in rows])
    tfs = scfan_model_tfs(model)
    if len(tfs) != X.shape[1]:
        raise ValueError(f"scFAN {model}: {len(tfs)} TFs in chip.txt but {X.shape[1]} score columns")
    if len(lab) != X.shape[0]:
        raise ValueError(f"scFAN {dataset}: {len(lab)} labels for {X.shape[0]} cells")
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(lab)}, index=pd.Index([f"cell{i}" for i in range(X.shape[0])])
    )
    adata = AnnData(X=X.astype(np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(tfs)))
    tsne = pd.read_csv(fetch(f"reference/scfan/example/{d}_dataset/Tsne_matrix_{d}_save"), index_col=0)
    if len(tsne) == adata.n_obs:
        adata.obsm["X_tsne_scfan"] = tsne.to_numpy(float)
    adata.uns["dataset"] = {"name": f"scfan_{dataset}_{model}", "source": "sperfu/scFAN@914c50ce example/"}
    adata.uns[ACTIVITY_IN_X] = True  # X is the activity (cells x TFs), for sfp.tl.rank_tfs and sfp.pl
    logg.info("loaded scFAN %s scores for %s: %d cells x %d TFs", model, dataset, *adata.shape)
    return adata


# ---------------------------------------------------------------------------------------- genomes
# These return FASTA paths, not Genome objects: datasets does not import scfanpy.genome (open them
# with sfp.Genome(path), or pass the path wherever a genome is taken).
def hg19_chr22_block() -> Path:
    """A real 1-Mbp block of hg19 (chr22:20,000,001-21,000,000): the path of its FASTA.

    The record is named ``22:20000001-21000000`` upstream (HISAT2 example reference); its sequence
    starts at hg19 chr22 position 20,000,001 (1-based), so 0-based position ``p`` of chr22 is offset
    ``p - 20_000_000`` in the record.

    Returns
    -------
    path : pathlib.Path
        The plain FASTA in the data cache; open it with ``sfp.Genome(path, name="hg19_chr22_20-21M")``.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> genome = sfp.Genome(sfp.datasets.hg19_chr22_block(), name="hg19_chr22_20-21M")  # doctest: +SKIP
    """
    return fetch("genome/hg19_chr22_20-21M/22_20-21M.fa")


def hg19_chr20() -> Path:
    """Full-length hg19 ``chr20`` (bgzip), all N except the real block chr20:9,995,001-11,095,000.

    Returns
    -------
    path : pathlib.Path
        The bgzip FASTA in the data cache, its ``.fai`` and ``.gzi`` indexes beside it; open it with
        ``sfp.Genome(path, name="hg19")``.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> genome = sfp.Genome(sfp.datasets.hg19_chr20(), name="hg19")  # doctest: +SKIP
    """
    fetch("genome/hg19_chr20_block/ucsc.hg19.chr20.unittest.fasta.gz.fai")
    fetch("genome/hg19_chr20_block/ucsc.hg19.chr20.unittest.fasta.gz.gzi")
    return fetch("genome/hg19_chr20_block/ucsc.hg19.chr20.unittest.fasta.gz")


def factornet_weights(tf: str = "MAX") -> dict:
    """Paths of a published FactorNet model (Quang & Xie 2019): ``model.json``, ``best_model.hdf5``, ...

    Parameters
    ----------
    tf
        ``'MAX'``, ``'GABPA'`` (with meta features) or ``'NANOG'``.

    Returns
    -------
    files : dict
        File name -> local path, for the model folder.
    """
    ks = [k for k in keys("weights/factornet/") if k.split("/")[2] == tf]
    if not ks:
        avail = sorted({k.split("/")[2] for k in keys("weights/factornet/")})
        raise KeyError(f"no FactorNet model for {tf!r}; available: {avail}")
    return {k.rsplit("/", 1)[1]: fetch(k) for k in ks}
