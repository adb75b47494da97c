"""Import the published FactorNet Keras 1.1 models (Theano backend) into :class:`FactorNetModule`.

Used by :meth:`scfanpy.models.FACTORNET.from_keras`.

A FactorNet model directory holds ``model.json`` (Keras 1.1.1 functional model: twin forward / reverse-
complement inputs ``(1002, 4 + n_tracks)``, optional meta input), ``best_model.hdf5`` (weights),
``chip.txt`` (TF names), ``bigwig.txt`` (signal track names in input order) and, for meta models,
``meta.txt`` (meta feature names).

Weight conversion (Keras 1, Theano backend, ``dim_ordering='tf'`` layers):

* ``Convolution1D`` W ``(k, 1, in, out)``: Theano's ``conv2d`` is a true convolution (kernel flipped), so
  the torch cross-correlation weight is ``W[::-1, 0].transpose(2, 1, 0)``. FactorNet's own
  ``inject_pwm`` writes motifs reversed for the same reason; the imported GABPA filters match the ETS
  motif only in this orientation (checked in the tests).
* ``TimeDistributed(Dense)`` and ``Dense`` W ``(in, out)``: ``W.T``.
* ``LSTM`` (``consume_less='cpu'``): twelve matrices ``W_{i,c,f,o}`` ``(in, H)``, ``U_*`` ``(H, H)``,
  ``b_*``; torch stacks the gates as i, f, g (= Keras c), o; ``bias_hh`` is zero. Gates use Keras 1's ``hard_sigmoid``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_factornet_keras", "factornet_dir"]


def factornet_dir(path: str | os.PathLike | dict) -> Path:
    """Directory of a FactorNet model from a path or a :func:`scfanpy.datasets.factornet_weights` dict."""
    if isinstance(path, dict):
        return Path(path["model.json"]).parent
    p = Path(path)
    return p.parent if p.is_file() else p


def _names(path: Path) -> list[str]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            out.append(parts[-1])
    return out


def _layers(cfg: dict) -> list[dict]:
    return cfg["config"]["layers"]


def _architecture(cfg: dict) -> dict[str, Any]:
    """The layers of a FactorNet ``model.json`` that carry weights or settings, checked for support."""
    layers = _layers(cfg)
    by_class: dict[str, list[dict]] = {}
    for layer in layers:
        by_class.setdefault(layer["class_name"], []).append(layer)
    inputs = list(by_class["InputLayer"])
    seq_in = [l_ for l_ in inputs if len(l_["config"]["batch_input_shape"]) == 3]
    meta_in = [l_ for l_ in inputs if len(l_["config"]["batch_input_shape"]) == 2]
    (conv,) = by_class["Convolution1D"]
    c = conv["config"]
    if c["border_mode"] != "valid" or c.get("subsample_length", 1) != 1 or c["activation"] != "relu":
        raise ValueError("unsupported convolution settings")
    (td,) = by_class["TimeDistributed"]
    (pool,) = by_class["MaxPooling1D"]
    if pool["config"]["stride"] != pool["config"]["pool_length"]:
        raise ValueError("pool stride differs from pool length")
    (bi,) = by_class["Bidirectional"]
    lstm = bi["config"]["layer"]["config"]
    if bi["config"]["merge_mode"] != "concat" or not lstm["return_sequences"]:
        raise ValueError("unsupported Bidirectional LSTM settings")
    if td["config"]["layer"]["config"]["output_dim"] != c["nb_filter"]:
        raise ValueError("per-position dense width differs from the number of filters")
    window, n_channels = seq_in[0]["config"]["batch_input_shape"][1:]
    return {
        "conv": conv,
        "td": td,
        "pool": pool,
        "bi": bi,
        "lstm": lstm,
        "dropouts": [l_["config"]["p"] for l_ in by_class["Dropout"]],
        "dense_names": [l_["name"] for l_ in layers if l_["class_name"] == "Dense"],
        "n_dense": by_class["Dense"][0]["config"]["output_dim"],
        "n_meta": meta_in[0]["config"]["batch_input_shape"][1] if meta_in else 0,
        "window": int(window),
        "n_channels": int(n_channels),
    }


def _read_weights(file: Path, arch: dict[str, Any]) -> dict[str, np.ndarray]:
    """The HDF5 weights as a FactorNetModule state dict (numpy), converted as the module docstring says."""
    import h5py

    conv, td, bi, lstm = arch["conv"], arch["td"], arch["bi"], arch["lstm"]
    with h5py.File(file, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f

        def w(layer: str, name: str) -> np.ndarray:
            return np.asarray(g[layer][name], dtype=np.float32)

        cw = w(conv["name"], f"{conv['name']}_W")  # (k, 1, in, out)
        inner = td["config"]["layer"]["config"]["name"]
        sd = {
            "conv.weight": np.ascontiguousarray(cw[::-1, 0].transpose(2, 1, 0)),
            "conv.bias": w(conv["name"], f"{conv['name']}_b"),
            "pos_dense.weight": w(td["name"], f"{inner}_W").T[:, :, None],
            "pos_dense.bias": w(td["name"], f"{inner}_b"),
        }
        for direction, suffix in (("forward", ""), ("backward", "_reverse")):
            base = f"{direction}_{lstm['name'].split('_', 1)[1]}"  # forward_lstm_1 / backward_lstm_1

            def gates(kind: str, base=base) -> np.ndarray:
                # torch stacks the gates i, f, g (= Keras c), o
                return np.concatenate([w(bi["name"], f"{base}_{kind}_{gate}").T for gate in "ifco"], axis=0)

            sd[f"bilstm.lstm.weight_ih_l0{suffix}"] = gates("W")
            sd[f"bilstm.lstm.weight_hh_l0{suffix}"] = gates("U")
            sd[f"bilstm.lstm.bias_ih_l0{suffix}"] = np.concatenate(
                [w(bi["name"], f"{base}_b_{gate}") for gate in "ifco"]
            )
            sd[f"bilstm.lstm.bias_hh_l0{suffix}"] = np.zeros_like(sd[f"bilstm.lstm.bias_ih_l0{suffix}"])
        targets = ["dense"] + (["dense_meta"] if arch["n_meta"] else []) + ["out"]
        if len(arch["dense_names"]) != len(targets):
            raise ValueError(f"expected {len(targets)} Dense layers, found {arch['dense_names']}")
        for tgt, name in zip(targets, arch["dense_names"], strict=True):
            sd[f"{tgt}.weight"] = w(name, f"{name}_W").T
            sd[f"{tgt}.bias"] = w(name, f"{name}_b")
    sd["meta_default"] = np.zeros(arch["n_meta"], dtype=np.float32)
    return sd


def read_factornet_keras(
    path: str | os.PathLike | dict, *, weights: str = "best_model.hdf5"
) -> dict[str, Any]:
    """Parse a FactorNet Keras 1.1 model into FactorNetModule kwargs and a torch state dict.

    Returns
    -------
    spec : dict
        ``tf_names``, ``track_names``, ``meta_names``, ``window``, ``n_tracks``, ``module_kwargs`` and
        ``state_dict`` (torch tensors).
    """
    import torch

    d = factornet_dir(path)
    cfg = json.loads((d / "model.json").read_text())
    if not str(cfg.get("keras_version", "1")).startswith("1"):
        raise ValueError(f"expected a Keras 1.x model, got {cfg.get('keras_version')}")
    arch = _architecture(cfg)
    n_meta = arch["n_meta"]
    tf_names = _names(d / "chip.txt")
    track_names = _names(d / "bigwig.txt")
    n_tracks = arch["n_channels"] - 4
    if len(track_names) != n_tracks:
        track_names = [f"track{i}" for i in range(n_tracks)]
    sd = _read_weights(d / weights, arch)
    c, lstm, dropouts = arch["conv"]["config"], arch["lstm"], arch["dropouts"]
    module_kwargs = {
        "n_filters": c["nb_filter"],
        "filter_width": c["filter_length"],
        "pool": arch["pool"]["config"]["pool_length"],
        "lstm_hidden": lstm["output_dim"],
        "n_dense": arch["n_dense"],
        "n_meta": n_meta,
        "dropout_conv": dropouts[0],
        "dropout": dropouts[1] if len(dropouts) > 1 else 0.5,
        "recurrent_activation": lstm.get("inner_activation", "hard_sigmoid"),
        "rc_merge": "probability",
    }
    return {
        "tf_names": tf_names or ["tf0"],
        "track_names": track_names,
        "meta_names": _names(d / "meta.txt") if n_meta else [],
        "window": arch["window"],
        "n_tracks": int(n_tracks),
        "module_kwargs": module_kwargs,
        "state_dict": {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in sd.items()},
    }
