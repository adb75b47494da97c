import subprocess
import sys

import anndata as ad
import pytest

import scfanpy as sfp
from scfanpy.cli import _parser, main


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "predict" in out and "demo" in out
    assert main([]) == 0


def test_demo_random_state_option():
    assert _parser().parse_args(["demo", "--random-state", "4"]).random_state == 4
    assert _parser().parse_args(["demo", "--seed", "3"]).random_state == 3  # the former name still parses
    assert _parser().parse_args(["demo"]).random_state == 0


def test_entry_point_help():
    out = subprocess.run(
        [sys.executable, "-m", "scfanpy.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in out.stdout


def test_demo(tmp_path, capsys):
    assert (
        main(
            [
                "demo",
                "--out",
                str(tmp_path / "d"),
                "--n-cells",
                "240",
                "--n-peaks",
                "400",
                "--n-neighbors",
                "20",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ARI" in out
    files = {p.name for p in (tmp_path / "d").iterdir()}
    assert {
        "demo.h5ad",
        "umap_tf_activity.png",
        "matrixplot_tf_activity.png",
        "rank_tfs.png",
        "tf_binding.png",
    } <= files
    a = ad.read_h5ad(tmp_path / "d" / "demo.h5ad")
    assert a.obsm["tf_activity"].shape == (240, 8)
    assert a.uns["demo_scores"]["ari_leiden_tf_vs_cell_type"] > 0.5


def test_predict(tmp_path, sim_small):
    adata, genome, _ = sim_small
    a = adata[:100, :150].copy()
    a.write_h5ad(tmp_path / "in.h5ad")
    rc = main(
        [
            "predict",
            str(tmp_path / "in.h5ad"),
            "--genome",
            str(genome.path),
            "--tfs",
            "GATA1,SPI1",
            "--n-neighbors",
            "10",
            "-o",
            str(tmp_path / "out.h5ad"),
        ]
    )
    assert rc == 0
    b = ad.read_h5ad(tmp_path / "out.h5ad")
    assert list(b.obsm["tf_activity"].columns) == ["GATA1", "SPI1"]
    assert b.uns["tf_activity"]["params"]["model"] == "jaspar_motif"
    assert "smoothed" in b.layers
    _ = sfp  # package import stays cheap
