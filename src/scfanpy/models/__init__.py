"""Models: sequence TF-binding models (DanQ, FactorNet, scFAN), the JASPAR motif model, SAILER, D-GEX.

Torch and scvi-tools are imported only when a model class is first accessed.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "MotifModel": "._motif",
        "DANQ": "._seqmodels",
        "FACTORNET": "._seqmodels",
        "SCFAN": "._seqmodels",
        "pretrained": "._pretrained",
        "available_pretrained": "._pretrained",
        "CombinedModel": "._combined",
        "best_models": "._combined",
        "SAILER": "._sailer",
        "DGEX": "._dgex",
        "LinearLandmarkRegressor": "._dgex_baselines",
        "KNNLandmarkRegressor": "._dgex_baselines",
        # developer API: networks (pure torch), model bases and training plans
        "SeqModelBase": "._seqmodels",
        "DanQModule": "._seqmodules",
        "FactorNetModule": "._seqmodules",
        "ScFANModule": "._seqmodules",
        "SeqModule": "._seqtraining",
        "SeqTrainingPlan": "._seqtraining",
        "SAILERModule": "._sailer_module",
        "SAILERTrainingPlan": "._sailer_training",
        "DGEXModule": "._dgex_module",
        "DGEXTrainingPlan": "._dgex_training",
    },
)
