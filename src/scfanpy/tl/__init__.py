"""Tools: per-cell TF binding and activity, key TFs, SAILER embedding, landmark-gene imputation, model evaluation."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "predict_tf_binding": "._predict",
        "rank_tfs": "._rank",
        "tf_activity_adata": "._rank",
        "top_tfs": "._rank",
        "cell_tf_binding": "._cell_binding",
        "motif_similarity": "._archetypes",
        "motif_archetypes": "._archetypes",
        "sailer": "._sailer",
        "impute_from_landmarks": "._impute",
        # sequence-model evaluation and interpretation
        "roc_pr": "._evaluate",
        "filter_motifs": "._filters",
        "attribution": "._attribution",
        "Attribution": "._attribution",
        "model_motifs": "._model_motifs",
        "variant_effects": "._variants",
    },
)
