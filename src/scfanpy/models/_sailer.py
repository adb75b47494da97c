"""SAILER: a confounder-invariant latent space for scATAC-seq, on the scvi-tools model base."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager, fields
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin, VAEMixin

from .. import _logging as logg
from .._docs import doc_params
from .._utils import atac_modality, check_model_file, log_added, reading_model
from ._sailer_module import DEPTH_KEY, SAILERModule, pairwise_gaussian_kl
from ._sailer_training import SAILERTrainingPlan, cyclical_beta

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData

__all__ = [
    "SAILER",
    "SAILERTrainingPlan",
    "SAILERModule",
    "cyclical_beta",
    "pairwise_gaussian_kl",
    "DEPTH_OBS",
]

#: obs column written by :meth:`SAILER.setup_anndata` when no ``depth_key`` is given
DEPTH_OBS = "sailer_depth"
_HOW = "modalities={{'layer': {}}}"  # how a MuData's modality of peaks is chosen (see atac_modality)


def _count_accessible(X, chunk: int = 65_536) -> np.ndarray:
    """Accessible (non-zero) peaks per cell, a chunk of rows at a time (no full-size copy, no dense matrix)."""
    out = np.empty(X.shape[0], dtype=np.int64)
    if not sp.issparse(X):  # dense: keep the boolean temporary near 64 MB
        chunk = max(1, min(chunk, 2**26 // max(X.shape[1], 1)))
    for s in range(0, X.shape[0], chunk):
        blk = X[s : s + chunk]
        if sp.issparse(blk):
            blk = sp.csr_matrix(blk)
            out[s : s + chunk] = (
                np.diff(blk.indptr) if blk.data.min(initial=1) > 0 else np.asarray((blk > 0).sum(1)).ravel()
            )
        else:
            out[s : s + chunk] = (np.asarray(blk) > 0).sum(1)
    return out


def _check_matrix(X, what: str) -> np.ndarray:
    """Validate a cells x peaks matrix for SAILER; returns accessible peaks per cell."""
    if sp.issparse(X):
        vals = X.data
        if vals.size and vals.min() < 0:
            raise ValueError(f"{what} has negative values; SAILER needs counts or a binary matrix")
        nonbinary = vals.size > 0 and not np.all((vals == 0) | (vals == 1))
    else:
        Xa = np.asarray(X[: min(X.shape[0], 2048)])
        if Xa.size and Xa.min() < 0:
            raise ValueError(f"{what} has negative values; SAILER needs counts or a binary matrix")
        nonbinary = bool(np.any((Xa != 0) & (Xa != 1)))
    if nonbinary:
        logg.info("%s is not binary: SAILER binarises it (x > 0) per minibatch", what)
    depth = _count_accessible(X)
    n_empty = int((depth == 0).sum())
    if n_empty:
        raise ValueError(
            f"{n_empty} cells have no accessible peak in {what}; remove them first "
            "(e.g. sc.pp.filter_cells(adata, min_genes=1))"
        )
    return depth


def _depth_column(adata: AnnData, depth: np.ndarray | None, depth_key: str | None) -> str:
    if depth_key is None:
        adata.obs[DEPTH_OBS] = depth.astype(np.float32)
        log_added("obs", DEPTH_OBS, "accessible peaks per cell")
        return DEPTH_OBS
    if depth_key not in adata.obs:
        raise KeyError(f"depth_key {depth_key!r} not in obs (columns: {list(adata.obs.columns)[:10]}...)")
    d = pd.to_numeric(adata.obs[depth_key], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError(f"obs[{depth_key!r}] must be a positive number for every cell")
    return depth_key


class SAILER(VAEMixin, UnsupervisedTrainingMixin, BaseModelClass):
    """SAILER: scATAC-seq latent space invariant to read depth and batch (Cao et al., Bioinformatics 2021).

    A conditional VAE over binarised peaks. The encoder sees only the cell's peaks; the decoder
    sees ``[z, standardised log read depth, batch one-hot, continuous covariates]`` and outputs a
    Bernoulli probability per peak, so the confounders can be explained away by the decoder. On top
    of the ELBO, the loss penalises the information ``z`` keeps about the confounders with Moyer et
    al.'s (NeurIPS 2018) bound: the closed-form pairwise KL between the minibatch's Gaussian
    posteriors, ``mean_j KL(q(z|x_i) || q(z|x_j))``. With weight ``lambda`` the loss is
    ``(1 + lambda) * w * BCE + beta * KL(q || N(0, I)) + lambda * beta * pairwise KL``, where ``beta``
    follows a reconstruction-only warm-up, then cyclical annealing (Fu et al., NAACL 2019).

    Defaults follow the paper and its released code (uci-cbcl/SAILER: ``model.py``, ``trainer.py``,
    ``train.py``): encoder ``peaks -> 1000 -> 100 -> 10`` with batch norm and LeakyReLU(0.2), decoder
    mirrored, ``lambda = 1``, Adam with lr ``1e-3`` and L2 weight decay ``5e-4``, minibatch 400,
    10 reconstruction-only warm-up epochs, annealing cycles of 100 epochs rising over the first half,
    400 epochs; read depth = number of accessible peaks, as a standardised log.

    Deviations from the released code (deliberate, documented, all settable):

    * **Reconstruction weight 1, not 30.** The code multiplies the BCE by ``pos_w = 30`` (passed as
      a uniform ``weight``, so negatives are scaled too); the objective the paper states (Moyer et
      al.'s) carries no such factor as we read it, and that is the default here. With weight ``w`` the
      penalty can never exceed ``1 / w`` of the reconstruction term, whatever ``lambda``; at 30 it
      hardly acts. ``reconstruction_weight=30`` restores the code's behaviour. Its warm-up uses a
      positive-class weight and a mean reduction instead; here the warm-up is the same loss with
      ``beta = 0``.
    * **Invariance scaling.** The code adds ``lambda * beta * mean_{i,j} KL_ij`` once per minibatch
      next to per-cell *sums* of BCE and KL, i.e. a per-cell weight of ``lambda / B`` (1/400 at the
      defaults). Here the bound is applied per cell as in Moyer et al.
      (``invariance_reduction='cell'``); ``'batch'`` restores the code's scaling.
    * **Posterior scale.** The code samples ``z`` with standard deviation ``exp(log_var)`` but
      computes the KL terms with ``exp(log_var / 2)``; here ``exp(log_var / 2)`` is used throughout
      (log-variance clamped to [-12, 8] for stability).
    * **Schedule.** The warm-up epochs count within ``max_epochs`` (the code runs them before), and
      the cycle length is ``(max_epochs - n_epochs_warmup) / n_kl_cycles`` epochs (4 cycles: 100
      epochs at the code's 410 in all), so shorter runs keep whole cycles.
    * **Batch.** The code feeds one numeric batch column (two batches only); here batches are
      one-hot, any number. Extra continuous covariates can be given to the decoder too.
    * **Read depth.** The code standardises with the log of raw count totals but feeds the number
      of accessible peaks; here the number of accessible peaks is used for both (or ``depth_key``).

    What the penalty does (measured on the package's simulator, 800 cells, 2 batches): it shrinks
    the pairwise KL several-fold by widening the posteriors, improves cluster recovery and lowers the
    depth information in samples of ``z`` and in linear probes of the means; the posterior *means*
    can still keep a within-cluster ordering by depth that a k-NN probe finds.

    Parameters
    ----------
    adata
        AnnData or MuData registered with ``setup_anndata`` / :meth:`setup_mudata`.
    n_latent
        Latent dimension (paper: 10).
    n_hidden
        Encoder hidden widths; the decoder mirrors them (paper: ``(1000, 100)``).
    invariance_weight
        ``lambda``, weight of the confounder-information bound (paper: 1). ``0`` turns it off.
    reconstruction_weight
        ``w``, weight of the Bernoulli reconstruction term (paper's loss: 1; released code: 30).
    invariance_reduction
        ``'cell'`` (per-cell bound, default) or ``'batch'`` (once per minibatch as in the paper code).
    negative_slope
        LeakyReLU slope (paper: 0.2).

    Examples
    --------
    >>> import scfanpy as sfp, scanpy as sc
    >>> adata, _, _ = sfp.datasets.simulate_scatac(400, 500, n_batches=2, random_state=0)
    >>> sfp.models.SAILER.setup_anndata(adata, batch_key="batch")  # doctest: +SKIP
    >>> model = sfp.models.SAILER(adata)  # doctest: +SKIP
    >>> model.train(max_epochs=50)  # doctest: +SKIP
    >>> adata.obsm["X_sailer"] = model.get_latent_representation()  # doctest: +SKIP
    >>> sc.pp.neighbors(adata, use_rep="X_sailer")  # doctest: +SKIP
    """

    _module_cls = SAILERModule
    _training_plan_cls = SAILERTrainingPlan

    def __init__(
        self,
        adata: AnnData | MuData,
        n_latent: int = 10,
        n_hidden: Sequence[int] = (1000, 100),
        invariance_weight: float = 1.0,
        reconstruction_weight: float = 1.0,
        invariance_reduction: Literal["cell", "batch"] = "cell",
        negative_slope: float = 0.2,
    ):
        super().__init__(adata)
        logd = np.log(np.asarray(self.adata_manager.get_from_registry(DEPTH_KEY), dtype=float).ravel())
        d_mean = float(logd.mean())
        d_std = float(logd.std())
        if not np.isfinite(d_std) or d_std < 1e-8:
            d_std = 1.0
        n_cont = self.summary_stats.get("n_extra_continuous_covs", 0)
        self.module = self._module_cls(
            n_input=self.summary_stats.n_vars,
            n_batch=self.summary_stats.n_batch,
            n_continuous_cov=n_cont,
            n_hidden=tuple(n_hidden),
            n_latent=n_latent,
            invariance_weight=invariance_weight,
            reconstruction_weight=reconstruction_weight,
            invariance_reduction=invariance_reduction,
            negative_slope=negative_slope,
            depth_mean=d_mean,
            depth_std=d_std,
        )
        self.n_latent = n_latent
        self._model_summary_string = (
            f"SAILER model: n_latent={n_latent}, n_hidden={tuple(n_hidden)}, "
            f"invariance_weight={invariance_weight}, reconstruction_weight={reconstruction_weight}, "
            f"invariance_reduction={invariance_reduction!r}, n_batch={self.summary_stats.n_batch}"
        )
        self.init_params_ = self._get_init_params(locals())

    # ------------------------------------------------------------------ setup
    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        *,
        layer: str | None = None,
        batch_key: str | None = None,
        continuous_covariate_keys: list[str] | None = None,
        depth_key: str | None = None,
        **kwargs,
    ) -> None:
        """Register an AnnData (cells x peaks) with SAILER.

        Parameters
        ----------
        adata
            Cells x peaks; counts or binary, sparse or dense (binarised per minibatch, never densified
            whole).
        layer
            Layer holding the matrix; ``None`` uses ``X``.
        batch_key
            obs column with the batch (given to the decoder only).
        continuous_covariate_keys
            obs columns with extra continuous confounders (given to the decoder only).
        depth_key
            obs column with a positive read depth per cell; ``None`` computes the number of
            accessible peaks per cell and writes it to ``obs['sailer_depth']``.
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        X = adata.X if layer is None else adata.layers[layer]
        if X is None:
            raise ValueError("adata has no X; pass layer=")
        where = "X" if layer is None else f"layers[{layer!r}]"
        _check_obs_keys(adata.obs, batch_key, continuous_covariate_keys)
        depth = _check_matrix(X, where)
        depth_col = _depth_column(adata, depth, depth_key)
        anndata_fields = [
            fields.LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False),
            fields.CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
            fields.NumericalObsField(DEPTH_KEY, depth_col),
            fields.NumericalJointObsField(REGISTRY_KEYS.CONT_COVS_KEY, continuous_covariate_keys),
        ]
        adata_manager = AnnDataManager(fields=anndata_fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    @classmethod
    def setup_mudata(
        cls,
        mdata: MuData,
        *,
        layer: str | None = None,
        batch_key: str | None = None,
        continuous_covariate_keys: list[str] | None = None,
        depth_key: str | None = None,
        modalities: dict[str, str] | None = None,
        **kwargs,
    ) -> None:
        """Register a MuData with SAILER (its ATAC modality is modelled).

        Parameters
        ----------
        mdata
            MuData with a cells x peaks modality.
        layer, batch_key, continuous_covariate_keys, depth_key
            As in ``setup_anndata``.
        modalities
            Which modality each argument refers to, e.g. ``{'layer': 'atac', 'batch_key': 'atac'}``.
            ``'layer'`` defaults to ``'atac'``: a MuData without an ``'atac'`` modality needs it (no other
            modality is guessed); an obs key without an entry is looked up in that modality's obs, then in
            ``mdata.obs``.
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        modalities = dict(modalities or {})
        extra = set(modalities) - {"layer", "batch_key", "continuous_covariate_keys", "depth_key"}
        if extra:
            raise ValueError(f"unknown modalities keys {sorted(extra)}")
        atac = modalities["layer"] = atac_modality(mdata, modalities.get("layer"), how=_HOW)
        ad_atac = mdata.mod[atac]
        if ad_atac.n_obs != mdata.n_obs:
            raise ValueError(
                f"modality {atac!r} has {ad_atac.n_obs} cells but the MuData {mdata.n_obs}; "
                "subset the MuData to the cells with ATAC first"
            )

        def _mod_of(arg: str, keys) -> str | None:
            if arg in modalities:
                return modalities[arg]
            if keys is None:
                return atac
            keys = [keys] if isinstance(keys, str) else list(keys)
            if all(k in ad_atac.obs for k in keys):
                return atac
            if all(k in mdata.obs for k in keys):
                return None
            missing = [k for k in keys if k not in ad_atac.obs and k not in mdata.obs]
            raise KeyError(f"{arg} {missing} not in obs of modality {atac!r} nor of the MuData")

        X = ad_atac.X if layer is None else ad_atac.layers[layer]
        where = f"mod[{atac!r}]." + ("X" if layer is None else f"layers[{layer!r}]")
        depth = _check_matrix(X, where)
        batch_mod = _mod_of("batch_key", batch_key)
        cont_mod = _mod_of("continuous_covariate_keys", continuous_covariate_keys)
        if depth_key is None:
            depth_col, depth_mod = _depth_column(ad_atac, depth, None), atac
        else:
            depth_mod = _mod_of("depth_key", depth_key)
            depth_col = _depth_column(ad_atac if depth_mod is not None else mdata, None, depth_key)
        mudata_fields = [
            fields.MuDataLayerField(
                REGISTRY_KEYS.X_KEY, layer, mod_key=atac, is_count_data=False, mod_required=True
            ),
            fields.MuDataCategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key, mod_key=batch_mod),
            fields.MuDataNumericalObsField(DEPTH_KEY, depth_col, mod_key=depth_mod),
            fields.MuDataNumericalJointObsField(
                REGISTRY_KEYS.CONT_COVS_KEY, continuous_covariate_keys, mod_key=cont_mod
            ),
        ]
        adata_manager = AnnDataManager(fields=mudata_fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(mdata, **kwargs)
        cls.register_manager(adata_manager)

    # ------------------------------------------------------------------ training
    @doc_params()
    def train(
        self,
        max_epochs: int = 400,
        *,
        lr: float = 1e-3,
        weight_decay: float = 5e-4,
        batch_size: int = 400,
        n_epochs_warmup: int = 10,
        n_kl_cycles: int = 4,
        kl_cycle_ratio: float = 0.5,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        train_size: float = 1.0,
        validation_size: float | None = None,
        early_stopping: bool = False,
        datasplitter_kwargs: dict | None = None,
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ) -> None:
        """Train with Adam, a reconstruction-only warm-up and cyclical annealing.

        Parameters
        ----------
        max_epochs
            Epochs in all, warm-up included (paper: 10 warm-up + 400).
        lr
            Adam learning rate (paper: ``1e-3``).
        weight_decay
            Adam L2 weight decay (paper: ``5e-4``).
        batch_size
            Cells per minibatch (paper: 400). The invariance bound is computed within a minibatch.
        n_epochs_warmup
            Reconstruction-only epochs at the start (paper: 10).
        n_kl_cycles
            Annealing cycles over the remaining epochs (paper: 4 cycles of 100 epochs).
        kl_cycle_ratio
            Fraction of each cycle over which ``beta`` rises from 0 to 1 (paper: 0.5).
        {accelerator}
        {devices}
        train_size, validation_size
            Cell split; the paper trains on all cells (``train_size=1``).
        early_stopping
            Stop on the validation reconstruction loss (needs ``train_size < 1``).
        datasplitter_kwargs, plan_kwargs
            Passed to :class:`~scvi.dataloaders.DataSplitter` / :class:`~scfanpy.models.SAILERTrainingPlan`.
        **trainer_kwargs
            Passed to :class:`~scvi.train.Trainer`.
        """
        if max_epochs < 1:
            raise ValueError("max_epochs must be >= 1")
        if n_kl_cycles < 1:
            raise ValueError("n_kl_cycles must be >= 1")
        cycle = max(1.0, (max_epochs - n_epochs_warmup) / n_kl_cycles)
        plan = {
            "lr": lr,
            "weight_decay": weight_decay,
            "eps": 1e-8,
            "optimizer": "Adam",
            "n_epochs_warmup": n_epochs_warmup,
            "kl_cycle_epochs": cycle,
            "kl_cycle_ratio": kl_cycle_ratio,
        }
        plan.update(plan_kwargs or {})
        if early_stopping and train_size >= 1.0:
            raise ValueError("early_stopping needs a validation set: pass train_size < 1")
        trainer_kwargs.setdefault("check_val_every_n_epoch", None if train_size >= 1.0 else 1)
        super().train(
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=devices,
            train_size=train_size,
            validation_size=validation_size,
            batch_size=batch_size,
            early_stopping=early_stopping,
            early_stopping_monitor="reconstruction_loss_validation",
            datasplitter_kwargs=datasplitter_kwargs,
            plan_kwargs=plan,
            **trainer_kwargs,
        )

    # ------------------------------------------------------------------ load
    @classmethod
    def load(cls, dir_path: str, adata: AnnData | MuData | None = None, **kwargs) -> SAILER:
        """Load a model saved with :meth:`~scvi.model.base.BaseModelClass.save` (scvi-tools' format).

        Parameters
        ----------
        dir_path
            Folder written by :meth:`~scvi.model.base.BaseModelClass.save`.
        adata
            Data set up like the training data; ``None``: the saved ``adata.h5ad``.
        **kwargs
            Passed to :meth:`scvi.model.base.BaseModelClass.load` (``accelerator``, ``device``, ...).

        Returns
        -------
        model : SAILER
            The loaded model.

        Raises
        ------
        FileNotFoundError
            ``dir_path`` is not a folder holding ``model.pt``.
        OSError
            ``model.pt`` is empty, truncated or corrupted (the message names it and says it is damaged).
        """
        path = check_model_file(dir_path, kwargs.get("prefix"), backup_url=kwargs.get("backup_url"))
        with reading_model(path):
            return super().load(dir_path, adata=adata, **kwargs)

    # ------------------------------------------------------------------ queries
    @torch.inference_mode()
    def get_normalized_accessibility(
        self,
        adata: AnnData | MuData | None = None,
        indices: Sequence[int] | None = None,
        *,
        transform_batch: str | None = None,
        depth: float | str | None = None,
        batch_size: int = 400,
        threshold: float | None = None,
        return_numpy: bool = False,
    ) -> pd.DataFrame | np.ndarray | sp.csr_matrix:
        """Imputed accessibility: Bernoulli probability per cell and peak at a reference batch and depth.

        The latent mean of each cell is decoded with every cell's batch set to ``transform_batch``
        and its depth set to ``depth``, so the values are comparable across batches and depths.

        Parameters
        ----------
        adata
            Registered data; ``None`` uses the training data.
        indices
            Cells to return; ``None`` all. The result is dense over these cells x all peaks unless
            ``threshold`` is given, so ask for subsets of large data.
        transform_batch
            Batch category to decode with; ``None`` the first category (the reference);
            ``'observed'`` keeps each cell's own.
        depth
            Accessible peaks to decode with; ``None`` the geometric mean over the training cells;
            ``'observed'`` keeps each cell's own.
        batch_size
            Cells per forward pass.
        threshold
            If given, probabilities below it are set to 0 and a sparse CSR matrix is returned.
        return_numpy
            Return an array (or CSR) instead of a DataFrame.

        Returns
        -------
        accessibility : pandas.DataFrame or numpy.ndarray or scipy.sparse.csr_matrix
            Cells x peaks probabilities: a DataFrame (sparse with ``threshold``) named by cells and
            peaks, or with ``return_numpy`` an array (a CSR matrix with ``threshold``).
        """
        adata = self._validate_anndata(adata)
        manager = self.get_anndata_manager(adata, required=True)
        if indices is None:
            indices = np.arange(adata.n_obs)
        indices = np.asarray(indices)
        code: int | None
        if transform_batch == "observed":
            code = None
        else:
            cats = list(manager.get_state_registry(REGISTRY_KEYS.BATCH_KEY).categorical_mapping)
            if transform_batch is None:
                code = 0
            elif transform_batch in cats:
                code = cats.index(transform_batch)
            else:
                raise KeyError(f"transform_batch {transform_batch!r} not among the batches {cats}")
        if depth is None:
            dval: float | None = float(torch.exp(self.module.depth_mean))
        elif depth == "observed":
            dval = None
        else:
            dval = float(depth)
            if not dval > 0:
                raise ValueError("depth must be positive")
        if threshold is not None and not 0 <= threshold <= 1:
            raise ValueError("threshold must be in [0, 1]")
        self.module.eval()
        out = []
        for tensors in self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size):
            inf = self.module.inference(**self.module._get_inference_input(tensors))
            inf = {"qz": inf["qz"], "z": inf["qz"].loc}
            gin = self.module._get_generative_input(tensors, inf, transform_batch=code, depth=dval)
            p = self.module.generative(**gin)["px"].probs.cpu().numpy()
            if threshold is not None:
                p[p < threshold] = 0
                p = sp.csr_matrix(p)
            out.append(p)
        res = sp.vstack(out, format="csr") if threshold is not None else np.concatenate(out)
        if return_numpy:
            return res
        var_names = self._peak_names(adata)
        obs_names = adata.obs_names[indices]
        if threshold is not None:
            return pd.DataFrame.sparse.from_spmatrix(res, index=obs_names, columns=var_names)
        return pd.DataFrame(res, index=obs_names, columns=var_names)

    def _peak_names(self, adata) -> pd.Index:
        if type(adata).__name__ == "MuData":
            mod = self.adata_manager.registry["setup_args"].get("modalities") or {}
            return adata.mod[atac_modality(adata, mod.get("layer"), how=_HOW)].var_names
        return adata.var_names

    @torch.inference_mode()
    def get_invariance_penalty(self, adata: AnnData | MuData | None = None, batch_size: int = 400) -> float:
        """Mean over minibatches of the pairwise-KL bound ``mean_ij KL(q_i || q_j)`` (nats); lower = more invariant."""
        adata = self._validate_anndata(adata)
        self.module.eval()
        vals = []
        for tensors in self._make_data_loader(adata=adata, batch_size=batch_size, shuffle=False):
            qz = self.module.inference(**self.module._get_inference_input(tensors))["qz"]
            vals.append(float(pairwise_gaussian_kl(qz.loc, qz.scale.pow(2)).mean()))
        return float(np.mean(vals))


def _check_obs_keys(obs: pd.DataFrame, batch_key, cont_keys) -> None:
    if batch_key is not None:
        if batch_key not in obs:
            raise KeyError(f"batch_key {batch_key!r} not in obs (columns: {list(obs.columns)})")
        if obs[batch_key].isna().any():
            raise ValueError(f"obs[{batch_key!r}] has missing values")
    for k in cont_keys or []:
        if k not in obs:
            raise KeyError(f"continuous covariate {k!r} not in obs (columns: {list(obs.columns)})")
        v = pd.to_numeric(obs[k], errors="coerce")
        if v.isna().any() or not np.all(np.isfinite(v.to_numpy(dtype=float))):
            raise ValueError(f"obs[{k!r}] must be finite numbers")
