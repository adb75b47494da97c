"""AnnData keys written by scfanpy, kept in one place (see docs/design)."""

from __future__ import annotations

# var columns with peak coordinates
CHR = "chr"
START = "start"
END = "end"

# varm / layers / obsm / uns keys
DNA_CODE = "dna_code"
SMOOTHED = "smoothed"
TF_BINDING = "tf_binding"
TF_ACTIVITY = "tf_activity"
SAILER = "X_sailer"
UNS = "scfanpy"
# uns flag: X of this AnnData is a cells x TFs activity (tf_activity_adata, scfan_tf_activity)
ACTIVITY_IN_X = "activity_in_X"

# DNA code alphabet: A=0 C=1 G=2 T=3 N=4
ALPHABET = "ACGTN"
N_CODE = 4

DATA_ENV = "SCFANPY_DATA_DIR"
