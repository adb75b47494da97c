"""FACTORNET.from_keras against an independent plain-numpy forward pass of the published HDF5 weights.

The reference below reads the Keras 1.1 HDF5 by layer name and implements the Keras 1 / Theano
semantics directly (true convolution, TimeDistributed dense, max-pool, Bidirectional LSTM with
hard-sigmoid gates in the file's i/c/f/o layout, flatten, dense, strand average); it shares no code
with the torch module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _hard_sigmoid(x):
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def _relu(x):
    return np.maximum(x, 0.0)


def _lstm_keras(x, p, prefix, backwards):
    """Keras 1 LSTM over (n, T, F), return_sequences; ``go_backwards`` output re-reversed by Bidirectional."""
    if backwards:
        x = x[:, ::-1]
    n, t_len, _ = x.shape
    hdim = p[f"{prefix}_U_i"].shape[0]
    h = np.zeros((n, hdim))
    c = np.zeros((n, hdim))
    outs = []
    for t in range(t_len):
        xt = x[:, t]
        i = _hard_sigmoid(xt @ p[f"{prefix}_W_i"] + h @ p[f"{prefix}_U_i"] + p[f"{prefix}_b_i"])
        f = _hard_sigmoid(xt @ p[f"{prefix}_W_f"] + h @ p[f"{prefix}_U_f"] + p[f"{prefix}_b_f"])
        cand = np.tanh(xt @ p[f"{prefix}_W_c"] + h @ p[f"{prefix}_U_c"] + p[f"{prefix}_b_c"])
        c = f * c + i * cand
        o = _hard_sigmoid(xt @ p[f"{prefix}_W_o"] + h @ p[f"{prefix}_U_o"] + p[f"{prefix}_b_o"])
        h = o * np.tanh(c)
        outs.append(h)
    y = np.stack(outs, axis=1)
    return y[:, ::-1] if backwards else y


def _numpy_factornet(model_dir: Path, x: np.ndarray, meta: np.ndarray | None) -> np.ndarray:
    """x: (n, L, 4 + tracks) channels-last like FactorNet's generator; returns sigmoid output (n, 1)."""
    cfg = json.loads((model_dir / "model.json").read_text())["config"]["layers"]
    with h5py.File(model_dir / "best_model.hdf5", "r") as f:
        g = f["model_weights"]
        p = {name: np.asarray(g[layer][name], dtype=np.float64) for layer in g for name in g[layer]}
    pool = next(l_ for l_ in cfg if l_["class_name"] == "MaxPooling1D")["config"]["pool_length"]
    dense_layers = [l_["name"] for l_ in cfg if l_["class_name"] == "Dense"]

    def strand(xs):
        w = p["convolution1d_1_W"][:, 0]  # (k, C, F)
        k = w.shape[0]
        t_out = xs.shape[1] - k + 1
        conv = np.zeros((xs.shape[0], t_out, w.shape[2]))
        for j in range(k):  # Theano conv2d: true convolution, kernel index runs backwards
            conv += xs[:, j : j + t_out] @ w[k - 1 - j]
        h = _relu(conv + p["convolution1d_1_b"])
        h = _relu(h @ p["dense_1_W"] + p["dense_1_b"])  # TimeDistributed(Dense)
        n_pool = h.shape[1] // pool
        h = h[:, : n_pool * pool].reshape(h.shape[0], n_pool, pool, -1).max(axis=2)
        fw = _lstm_keras(h, p, "forward_lstm_1", False)
        bw = _lstm_keras(h, p, "backward_lstm_1", True)
        h = np.concatenate([fw, bw], axis=-1).reshape(h.shape[0], -1)
        h = _relu(h @ p[f"{dense_layers[0]}_W"] + p[f"{dense_layers[0]}_b"])
        if meta is not None:
            h = np.concatenate([h, meta], axis=1)
            h = _relu(h @ p[f"{dense_layers[1]}_W"] + p[f"{dense_layers[1]}_b"])
        z = h @ p[f"{dense_layers[-1]}_W"] + p[f"{dense_layers[-1]}_b"]
        return 1.0 / (1.0 + np.exp(-z))

    x_rc = np.concatenate([x[:, ::-1, :4][:, :, ::-1], x[:, ::-1, 4:]], axis=-1)
    return 0.5 * (strand(x) + strand(x_rc))


def _inputs(n: int, length: int, rng):
    codes = rng.integers(0, 4, size=(n, length)).astype(np.uint8)
    codes[0, :50] = 4  # some N
    tracks = np.stack([rng.random((n, length)), rng.gamma(1.0, 2.0, (n, length))], axis=1).astype(np.float32)
    x = np.concatenate([np.vstack([np.eye(4), np.zeros((1, 4))])[codes], tracks.transpose(0, 2, 1)], axis=-1)
    return codes, tracks, x


@pytest.mark.parametrize("tf", ["MAX", "NANOG", "GABPA"])
def test_factornet_import_matches_numpy(tf):
    import scfanpy as sfp

    torch.set_num_threads(1)
    paths = sfp.datasets.factornet_weights(tf)
    model = sfp.models.FACTORNET.from_keras(paths)
    assert model.tf_names == [tf]
    spec = model.input_spec
    assert spec["window"] == 1002 and spec["n_tracks"] == 2 and spec["track_names"] == ["Unique35", "DGF"]

    rng = np.random.default_rng(0)
    codes, tracks, x = _inputs(4, 1002, rng)
    meta = rng.random((4, 8)).astype(np.float32) if tf == "GABPA" else None
    ref = _numpy_factornet(Path(paths["model.json"]).parent, x, meta)
    got = model.predict_codes(codes, tracks, meta=meta)
    assert got.shape == (4, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=1e-6)
    # also in log space (GABPA's outputs are tiny for random meta features)
    np.testing.assert_allclose(np.log(got), np.log(ref), rtol=1e-3, atol=1e-3)
    assert np.ptp(np.log(ref) - np.log1p(-ref)) > 0.1  # the logits vary across inputs


def test_factornet_import_filters_orientation():
    """Theano flips kernels: only the flipped GABPA filters carry the ETS core GGAA strongly."""
    import scfanpy as sfp
    from scfanpy.genome import encode_sequence

    model = sfp.models.FACTORNET.from_keras(sfp.datasets.factornet_weights("GABPA"))
    w = model.module.conv.weight.detach().numpy()[:, :4]  # (F, 4, k), imported orientation
    kmer = np.eye(4)[encode_sequence("CCGGAAGT")].T  # (4, 8)

    def best(weights):
        k = kmer.shape[1]
        return max(
            float((weights[f, :, i : i + k] * kmer).sum())
            for f in range(weights.shape[0])
            for i in range(weights.shape[2] - k + 1)
        )

    assert best(w) > 1.5 * best(w[:, :, ::-1])


def test_factornet_import_save_load_and_sequences(tmp_path):
    import scfanpy as sfp

    model = sfp.models.FACTORNET.from_keras(sfp.datasets.factornet_weights("MAX"))
    rng = np.random.default_rng(1)
    codes, tracks, _ = _inputs(3, 1002, rng)
    p0 = model.predict_codes(codes, tracks)
    model.save(tmp_path / "m")
    loaded = sfp.models.FACTORNET.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_codes(codes, tracks), p0, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(loaded.predict_codes(codes, tracks), p0)  # scvi-tools save / load, no data
    assert loaded.adata is None and loaded.track_default_ == [1.0, 0.0] and loaded.is_trained
    # shorter / longer inputs are padded / cropped; constant tracks broadcast
    assert loaded.predict_codes(codes[:, 100:900], tracks[:, :, 100:900].mean(-1)).shape == (3, 1)
    # no tracks: mappability 1 (Unique35), no DNase signal (DGF)
    np.testing.assert_allclose(
        loaded.predict_codes(codes), loaded.predict_codes(codes, np.tile([[1.0, 0.0]], (3, 1))), rtol=1e-6
    )
    df = loaded.predict_sequences(["CACGTG" * 20, "ACGT" * 400])
    assert list(df.columns) == ["MAX"] and df.shape == (2, 1)
    assert ((df.to_numpy() >= 0) & (df.to_numpy() <= 1)).all()
