"""Plotting: TF activity by cell and group, key TFs, binding; model diagnostics and filter logos."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        # TF activity (single cell)
        "tf_activity_embedding": "._activity",
        "tf_activity_heatmap": "._activity",
        "tf_activity_matrixplot": "._activity",
        "tf_activity_dotplot": "._activity",
        "rank_tfs": "._activity",
        "rank_tfs_effects": "._rank",
        "tf_binding": "._activity",
        # sequence-model diagnostics
        "training_curves": "._models",
        "roc_pr_curves": "._models",
        "filter_logos": "._models",
        # model interpretation
        "attribution_logo": "._attribution",
        "variant_effects": "._attribution",
    },
)
