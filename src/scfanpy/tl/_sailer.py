"""``sfp.tl.sailer``: train SAILER on cells x peaks and write its latent space to ``obsm``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._constants import SAILER as SAILER_KEY
from .._utils import get_adata, is_mudata, log_added, uns_params

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData

    from ..models._sailer import SAILER

__all__ = ["sailer"]


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
    random_state: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    return_model: bool = False,
    copy: bool = False,
) -> AnnData | MuData | SAILER | None:
    """Embed cells with SAILER, a scATAC latent space invariant to read depth and batch.

    Trains :class:`scfanpy.models.SAILER` (paper defaults: latent 10, encoder 1000 -> 100, lambda 1,
    minibatch 400) on the cells x peaks matrix and writes the posterior means, ready for
    ``sc.pp.neighbors(adata, use_rep='X_sailer')``. The matrix stays sparse: only a minibatch is
    densified at a time, so memory does not grow with the number of cells; a GPU is used when
    present.

    Parameters
    ----------
    data
        Cells x peaks AnnData (counts or binary; binarised), or a MuData (see ``mod``).
    batch_key
        obs column with the batch; given to the decoder only, so the latent space is freed of it.
    layer
        Layer with the matrix; ``None`` uses ``X``.
    continuous_covariate_keys
        Further continuous confounders (obs columns) for the decoder.
    depth_key
        obs column with read depth; ``None`` uses the number of accessible peaks per cell.
    n_latent
        Latent dimension.
    invariance_weight
        Weight ``lambda`` of the confounder-information penalty (0 turns it off).
    max_epochs
        Training epochs; ``None``: 400 (paper) from 2,400 to 20,000 cells, then
        ``400 * 20000 / n_cells`` (at least 20), so large data gets a similar number of updates; below
        2,400 cells ``400 * n_cells / 2400`` (at least 100), as small sets overfit (measured on the
        real 600-cell Schep and Granja subsets, see ``docs/benchmarks/sailer.md``).
    batch_size
        Cells per minibatch.
    accelerator
        Lightning accelerator; ``'auto'`` picks a GPU when present.
    key_added
        obsm key of the latent space.
    mod
        Modality of a MuData to use (default ``'atac'``).
    random_state
        Seed (sets ``scvi.settings.seed``).
    model_kwargs
        Further arguments of :class:`~scfanpy.models.SAILER` (``n_hidden``, ``reconstruction_weight``, ...).
    train_kwargs
        Further arguments of :meth:`~scfanpy.models.SAILER.train` (``lr``, ``n_epochs_warmup``, ...).
    return_model
        Return the trained model (when ``copy`` is False).
    copy
        Work on a copy and return it.

    Returns
    -------
    ``data`` copy if ``copy``, the model if ``return_model``, else ``None``. Writes to the AnnData
    (the modality for a MuData):

    ``obsm[key_added]``
        Cells x ``n_latent`` latent means (float32).
    ``obs['sailer_depth']``
        Accessible peaks per cell (when ``depth_key`` is None).
    ``uns[key_added]['params']``
        The arguments used, and the final training loss.

    For a MuData whose cells match the modality's, ``obsm[key_added]`` of the MuData is written too.

    Examples
    --------
    >>> import scanpy as sc, scfanpy as sfp
    >>> adata, _, _ = sfp.datasets.simulate_scatac(400, 500, n_batches=2, random_state=0)
    >>> sfp.tl.sailer(adata, batch_key="batch", max_epochs=20)  # doctest: +SKIP
    >>> sc.pp.neighbors(adata, use_rep="X_sailer")  # doctest: +SKIP
    >>> sc.tl.leiden(adata)  # doctest: +SKIP
    """
    import numpy as np
    import scvi

    from ..models._sailer import SAILER, _default_epochs

    if copy:
        data = data.copy()
    adata = get_adata(data, mod)
    if n_latent < 1:
        raise ValueError("n_latent must be >= 1")
    scvi.settings.seed = int(random_state)
    SAILER.setup_anndata(
        adata,
        layer=layer,
        batch_key=batch_key,
        continuous_covariate_keys=continuous_covariate_keys,
        depth_key=depth_key,
    )
    model = SAILER(adata, n_latent=n_latent, invariance_weight=invariance_weight, **(model_kwargs or {}))
    epochs = _default_epochs(adata.n_obs) if max_epochs is None else int(max_epochs)
    tk = {"enable_progress_bar": False, **(train_kwargs or {})}
    tk.setdefault("n_epochs_warmup", min(10, max(0, epochs // 10)))
    model.train(max_epochs=epochs, batch_size=batch_size, accelerator=accelerator, **tk)
    z = np.asarray(model.get_latent_representation(batch_size=batch_size), dtype=np.float32)
    adata.obsm[key_added] = z
    log_added("obsm", key_added, f"SAILER latent, {z.shape[1]} dims")
    if is_mudata(data) and data.n_obs == adata.n_obs and (data.obs_names == adata.obs_names).all():
        data.obsm[key_added] = z
        log_added("mudata.obsm", key_added)
    hist = model.history.get("train_loss", model.history.get("train_loss_epoch"))
    final = float(hist.iloc[-1, 0]) if hist is not None and len(hist) else float("nan")
    uns_params(
        adata,
        key_added,
        {
            "batch_key": batch_key,
            "layer": layer,
            "continuous_covariate_keys": list(continuous_covariate_keys or []),
            "depth_key": depth_key,
            "n_latent": n_latent,
            "invariance_weight": invariance_weight,
            "max_epochs": epochs,
            "batch_size": batch_size,
            "random_state": random_state,
            "model_kwargs": model_kwargs or {},
            "train_kwargs": train_kwargs or {},
            "final_train_loss": final,
        },
    )
    if copy:
        return data
    return model if return_model else None
