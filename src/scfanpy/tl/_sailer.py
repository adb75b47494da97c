"""``sfp.tl.sailer``: train SAILER on cells x peaks and write its latent space to ``obsm``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._constants import SAILER as SAILER_KEY
from .._docs import doc_params
from .._utils import get_adata, is_mudata, log_added, uns_params

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData

    from ..models._sailer import SAILER

__all__ = ["sailer"]


def _uns_key(key_added: str) -> str:
    """``uns`` key of the call's parameters: ``key_added`` without its ``X_`` prefix (scanpy's ``X_pca`` / ``pca``)."""
    return key_added.removeprefix("X_") or key_added


def _scvi_seed(random_state: int | np.random.Generator | None) -> int | None:
    """An integer seed for ``scvi.settings.seed`` (one draw from a Generator; None keeps the current seed)."""
    if random_state is None:
        return None
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    return int(random_state)


def _check_args(n_latent: int, max_epochs: int | None) -> None:
    if n_latent < 1:
        raise ValueError("n_latent must be >= 1")
    if max_epochs is not None and max_epochs < 1:
        raise ValueError("max_epochs must be >= 1")


def _train(adata: AnnData, args: dict[str, Any]) -> tuple[SAILER, np.ndarray, dict[str, Any]]:
    """Register ``adata`` and train SAILER with :func:`sailer`'s arguments ``args``.

    Returns the model, the latent means (float32) and the parameters to record, final loss included.
    """
    import scvi

    from ..models._sailer import SAILER
    from ..models._sailer_training import default_epochs

    seed = _scvi_seed(args["random_state"])
    if seed is not None:
        scvi.settings.seed = seed
    setup = {k: args[k] for k in ("batch_key", "layer", "continuous_covariate_keys", "depth_key")}
    SAILER.setup_anndata(adata, **setup)
    model_kwargs, train_kwargs = args["model_kwargs"] or {}, args["train_kwargs"] or {}
    model = SAILER(
        adata, n_latent=args["n_latent"], invariance_weight=args["invariance_weight"], **model_kwargs
    )
    epochs = default_epochs(adata.n_obs) if args["max_epochs"] is None else int(args["max_epochs"])
    tk = {"enable_progress_bar": False, **train_kwargs}
    tk.setdefault("n_epochs_warmup", min(10, max(0, epochs // 10)))
    model.train(max_epochs=epochs, batch_size=args["batch_size"], accelerator=args["accelerator"], **tk)
    z = np.asarray(model.get_latent_representation(batch_size=args["batch_size"]), dtype=np.float32)
    hist = model.history.get("train_loss", model.history.get("train_loss_epoch"))
    final = float(hist.iloc[-1, 0]) if hist is not None and len(hist) else float("nan")
    params = {
        **setup,
        "continuous_covariate_keys": list(setup["continuous_covariate_keys"] or []),
        "n_latent": args["n_latent"],
        "invariance_weight": args["invariance_weight"],
        "max_epochs": epochs,
        "batch_size": args["batch_size"],
        "random_state": args["random_state"],
        "model_kwargs": model_kwargs,
        "train_kwargs": train_kwargs,
        "final_train_loss": final,
    }
    return model, z, params


def _write(data: AnnData | MuData, adata: AnnData, z: np.ndarray, key_added: str, params: dict) -> None:
    """Write the latent means to ``obsm[key_added]`` (and the MuData's when cells match) and the params."""
    adata.obsm[key_added] = z
    log_added("obsm", key_added, f"SAILER latent, {z.shape[1]} dims")
    if is_mudata(data) and data.n_obs == adata.n_obs and (data.obs_names == adata.obs_names).all():
        data.obsm[key_added] = z
        log_added("mudata.obsm", key_added)
    uns_params(adata, _uns_key(key_added), params)


@doc_params()
def sailer(
    data: AnnData | MuData,
    *,
    batch_key: str | None = None,
    layer: str | None = None,
    continuous_covariate_keys: list[str] | None = None,
    depth_key: str | None = None,
    n_latent: int = 10,
    invariance_weight: float = 1.0,
    max_epochs: int | None = None,
    batch_size: int = 400,
    accelerator: str = "auto",
    key_added: str = SAILER_KEY,
    mod: str | None = None,
    random_state: int | np.random.Generator | None = 0,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    return_model: bool = False,
    copy: bool = False,
) -> AnnData | MuData | SAILER | None:
    """Embed cells with SAILER, a scATAC latent space invariant to read depth and batch.

    Trains :class:`scfanpy.models.SAILER` (paper defaults: latent 10, encoder 1000 -> 100, lambda 1,
    minibatch 400) on the cells x peaks matrix (counts or binary; binarised) and writes the posterior
    means, ready for ``sc.pp.neighbors(adata, use_rep='X_sailer')``. Only a minibatch is densified at a
    time, so memory does not grow with the number of cells; a GPU is used when present.

    Parameters
    ----------
    {data}
    batch_key
        obs column with the batch; given to the decoder only, so the latent space is freed of it.
    {layer}
    continuous_covariate_keys
        Further continuous confounders (obs columns) for the decoder.
    depth_key
        obs column with read depth; ``None`` uses the number of accessible peaks per cell.
    n_latent
        Latent dimension.
    invariance_weight
        Weight ``lambda`` of the confounder-information penalty (0 turns it off).
    max_epochs
        Training epochs; ``None``: 400 (paper) from 2,400 to 20,000 cells, ``400 * 20000 / n_cells``
        (at least 20) above, ``400 * n_cells / 2400`` (at least 100) below, as small sets overfit
        (measured on the real 600-cell Schep and Granja subsets, ``docs/benchmarks/sailer.md``).
    batch_size
        Cells per minibatch.
    {accelerator}
    key_added
        obsm key of the latent space; its parameters go to ``uns`` under the same key without the
        ``X_`` prefix (``'X_sailer'`` -> ``uns['sailer']``), as scanpy does for ``X_pca``.
    {mod}
    random_state
        Seed of the training (sets ``scvi.settings.seed``; a :class:`numpy.random.Generator` gives one
        draw; None leaves scvi-tools' seed as it is).
    model_kwargs
        Further arguments of :class:`~scfanpy.models.SAILER` (``n_hidden``, ``reconstruction_weight``, ...).
    train_kwargs
        Further arguments of :meth:`~scfanpy.models.SAILER.train` (``lr``, ``n_epochs_warmup``, ...).
    return_model
        Return the trained model (when ``copy`` is False).
    {copy}

    Returns
    -------
    None or AnnData or MuData or SAILER
        A copy of ``data`` when ``copy=True``, else the trained model when ``return_model=True``, else
        None (``data`` is changed in place). These fields are written (in the modality for a MuData):
    adata.obsm[key_added] : numpy.ndarray
        Cells x ``n_latent`` latent means (float32).
    adata.obs['sailer_depth'] : pandas.Series
        Accessible peaks per cell (when ``depth_key`` is None).
    adata.uns['sailer']['params'] : dict
        The arguments used and the final training loss (key: ``key_added`` without ``X_``).
    mdata.obsm[key_added] : numpy.ndarray
        The latent means again, for a MuData whose cells match the modality's.

    Examples
    --------
    >>> import scanpy as sc, scfanpy as sfp
    >>> adata, _, _ = sfp.datasets.simulate_scatac(400, 500, n_batches=2, random_state=0)
    >>> sfp.tl.sailer(adata, batch_key="batch", max_epochs=20)  # doctest: +SKIP
    >>> sc.pp.neighbors(adata, use_rep="X_sailer")  # doctest: +SKIP
    >>> sc.tl.leiden(adata)  # doctest: +SKIP
    """
    args = dict(locals())  # the call's arguments (scvi-tools' pattern), recorded in uns
    adata = get_adata(data, mod)
    _check_args(n_latent, max_epochs)
    if copy:
        data = data.copy()
        adata = get_adata(data, mod)
    model, z, params = _train(adata, args)
    _write(data, adata, z, key_added, params)
    if copy:
        return data
    return model if return_model else None
