"""Figures (Figure 5, sample grid, class histogram, IoU bars), Table 2, LaTeX and provenance.

Guarantee checked here: the same inputs give the same PNG bytes (same matplotlib / FreeType /
Pillow / numpy), within one process and across processes (the CLI run in a subprocess).
"""

import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from segaug.errors import SegaugError
from segaug.report import figures as F
from segaug.report.latex import to_latex
from segaug.report.provenance import code_version, config_hash, provenance, sidecar_path, write_sidecar
from segaug.report.table2 import PAPER_TABLE2, iou_series, load_class_runs, table2_rows

CLASSES = ["background", "aeroplane", "bicycle"]


def _script():
    spec = importlib.util.spec_from_file_location("figures_script", ROOT / "scripts" / "figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _metrics(d, trainset, seed, ious, miou, split="voc7", model="deeplabv3plus_r50", loss="ce"):
    p = d / "eval" / model / trainset / loss / f"seed{seed}" / "metrics.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    run = {"dataset": "voc2007", "split": split, "model": model, "trainset": trainset, "loss": loss, "seed": seed}
    p.write_text(
        json.dumps(
            {"class_names": CLASSES, "iou": dict(zip(CLASSES, ious)), "miou": miou, "pixel_acc": 0.9, "run": run}
        )
    )
    return p


def _metric_files(d, split="voc7"):
    return [
        _metrics(d, "origin", 0, [0.80, 0.40, None], 0.60, split),
        _metrics(d, "origin", 1, [0.84, 0.44, 0.10], 0.46, split),
        _metrics(d, "gen-default", 0, [0.82, 0.50, 0.20], 0.50, split),
        _metrics(d, "gen-default", 1, [0.82, 0.54, 0.30], 0.56, split),
    ]


def _curve(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("step,val_miou,val_pixel_acc,lr\n" + "".join(f"{s},{v},0.9,0.001\n" for s, v in rows))
    return path


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        w, h = im.size
    assert 400 <= w <= 4000 and 250 <= h <= 4000, (w, h)
    return data


def _synthetic_set(tmp_path, n=3):
    """dataset/ (real images), priors/{image,label}/, set/ (images, priors, manifest)."""
    rng = np.random.default_rng(0)
    root, priors, sset = tmp_path / "dataset", tmp_path / "priors", tmp_path / "set"
    for d in (root / "images", priors / "image", priors / "label", sset / "images", sset / "priors"):
        d.mkdir(parents=True)
    lines = []
    for k in range(n):
        src, oid = f"img{k}", f"img{k}_g0"
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(root / "images" / f"{src}.png")
        for p in (priors / "image" / f"{src}.png", priors / "label" / f"{src}.png", sset / "priors" / f"{oid}.png"):
            Image.fromarray(rng.integers(0, 2, (24, 32), dtype=np.uint8) * 255).save(p)
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(sset / "images" / f"{oid}.png")
        lines.append(
            {
                "output_id": oid,
                "source_id": src,
                "copy": 0,
                "balanced_class": "bicycle",
                "prompt": f"a photo of a bicycle on a road number {k}, " + "with a long caption " * 8,
            }
        )
    (sset / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    return root, priors, sset


# --- Figure 5 -------------------------------------------------------------------------------


def test_best_step_is_the_first_maximum_ignoring_nan():
    assert F.best_step([10, 20, 30, 40], [0.1, 0.5, float("nan"), 0.5]) == (20, 0.5)
    with pytest.raises(SegaugError, match="no finite"):
        F.best_step([10], [float("nan")])


def test_mean_curve_over_uneven_seeds():
    c = F.mean_curve(
        [(np.array([1, 2, 3]), np.array([10.0, 20.0, 30.0])), (np.array([1, 2]), np.array([14.0, float("nan")]))]
    )
    assert list(c["steps"]) == [1, 2, 3]
    assert list(c["mean"]) == [12.0, 20.0, 30.0] and list(c["n"]) == [2, 1, 1]
    assert list(c["min"]) == [10.0, 20.0, 30.0] and list(c["max"]) == [14.0, 20.0, 30.0]
    assert c["std"][0] == pytest.approx(np.std([10, 14], ddof=1)) and c["std"][1] == 0.0


def test_figure5_marks_best_steps_and_is_deterministic(tmp_path):
    origin = [_curve(tmp_path / f"o{s}.csv", [(40, 0.3 + s / 100), (80, 0.5), (120, 0.45)]) for s in range(3)]
    final = [_curve(tmp_path / f"f{s}.csv", [(40, 0.4), (80, 0.5), (120, 0.6 - s / 100)]) for s in range(2)]
    curves = {"D_origin": origin, "D_final": final}
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    best = F.figure5(curves, a)
    F.figure5(curves, b)
    assert best["D_origin"] == (80, pytest.approx(50.0)) and best["D_final"] == (120, pytest.approx(59.5))
    assert _png(a) == _png(b)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SegaugError, match="not a training curve"):
        F.read_curve(tmp_path / "x.csv")


# --- other figures ----------------------------------------------------------------------------


def test_sample_grid_histogram_and_bars_are_deterministic_pngs(tmp_path):
    root, priors, _ = _synthetic_set(tmp_path)
    rows = [
        {
            "image": root / "images" / "img0.png",
            "image_prior": priors / "image" / "img0.png",
            "label_prior": priors / "label" / "img0.png",
            "blended_prior": None,
            "generated": np.zeros((24, 32, 3), np.uint8),
            "prompt": "a long prompt " * 30,
            "title": "img0",
        }
    ]
    for name in ("g1.png", "g2.png"):
        F.sample_grid(rows * 2, tmp_path / name)
    assert _png(tmp_path / "g1.png") == _png(tmp_path / "g2.png")

    args = (CLASSES, [50, 10, 3], [60, 27, 27])
    kw = {"exclude": ["background"], "entropy": (1.2, 1.5), "cir": (0.1, 0.9), "n_balance": 27}
    for name in ("h1.png", "h2.png"):
        F.class_histogram(*args, tmp_path / name, **kw)
    assert _png(tmp_path / "h1.png") == _png(tmp_path / "h2.png")
    with pytest.raises(SegaugError, match="every class is excluded"):
        F.class_histogram(*args, tmp_path / "h3.png", exclude=CLASSES)

    series = {
        "D_origin": ([80.0, 40.0, float("nan")], [1.0, 2.0, float("nan")]),
        "D_final": ([81.0, 50.0, 20.0], [0.5, 1.0, 2.0]),
    }
    for name in ("b1.png", "b2.png"):
        F.per_class_iou_bars(CLASSES, series, tmp_path / name, paper={"D_origin": [89.3, 75.4, 43.9]})
    assert _png(tmp_path / "b1.png") == _png(tmp_path / "b2.png")
    assert _png(tmp_path / "b1.png") != _png(tmp_path / "h1.png")


# --- Table 2 --------------------------------------------------------------------------------------


def test_table2_mean_std_and_paper_columns_only_on_voc7(tmp_path):
    rows = table2_rows(load_class_runs(_metric_files(tmp_path / "a")), "gen-default")
    assert [r["class"] for r in rows] == [*CLASSES, "mIoU"]
    bg, aero, bike, miou = rows
    assert (bg["origin_mean"], bg["origin_std"]) == (82.0, pytest.approx(2.83, abs=0.01))
    assert (aero["final_mean"], aero["delta"]) == (52.0, 10.0)
    assert (bike["origin_mean"], bike["origin_std"]) == (10.0, 0.0)  # the seed without the class is left out
    assert (miou["origin_mean"], miou["final_mean"], miou["delta"]) == (53.0, 53.0, 0.0)  # runs' own mIoU
    assert (bg["paper_origin"], bg["paper_final"]) == (89.32, 88.69)
    assert (miou["paper_origin"], miou["paper_final"]) == (46.54, 50.27)
    assert PAPER_TABLE2["final"]["tvmonitor"] == 32.72 and len(PAPER_TABLE2["origin"]) == 21

    other = table2_rows(load_class_runs(_metric_files(tmp_path / "b", split="voc12_92")), "gen-default")
    assert all(r["paper_origin"] == "" and r["paper_final"] == "" for r in other)
    assert [r["final_mean"] for r in other] == [r["final_mean"] for r in rows]

    names, series, paper = iou_series(rows)
    assert names == CLASSES and series["D_final"][0] == [82.0, 52.0, 25.0] and paper["D_origin"][0] == 89.32
    assert iou_series(other)[2] == {}

    with pytest.raises(SegaugError, match="no metrics for training set 'gen-x'"):
        table2_rows(load_class_runs(_metric_files(tmp_path / "c")), "gen-x")
    files = _metric_files(tmp_path / "d") + [_metrics(tmp_path / "d", "origin", 0, [0.1, 0.1, 0.1], 0.1, loss="focal")]
    with pytest.raises(SegaugError, match="two runs of training set 'origin' with seed 0"):
        table2_rows(load_class_runs(files), "gen-default", loss=None)
    assert table2_rows(load_class_runs(files), "gen-default", loss="ce") == rows


# --- LaTeX ----------------------------------------------------------------------------------------


def test_latex_booktabs_escaped_and_balanced():
    rows = [
        {"trainset": "gen-t3_cpa", "miou": "47.50 ± 0.71", "n": 3, "note": "50% & #1 {x} ~ ^ \\"},
        {"trainset": "origin", "miou": "46.0", "n": None, "note": float("nan")},
    ]
    tex = to_latex(rows, caption="Table 3: w1 x w2 of gen_default", label="tab:t3")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "\\begin{tabular}{llrl}" in tex  # numbers right-aligned
    assert "gen-t3\\_cpa" in tex and "gen\\_default" in tex and "$\\pm$" in tex
    assert "50\\% \\& \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}" in tex
    assert not re.search(r"(?<!\\)_", tex.replace("\\_", ""))  # every underscore escaped
    unescaped = re.sub(r"\\[{}]", "", tex)
    assert unescaped.count("{") == unescaped.count("}")
    body = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert len(body) == 3 and all(line.count(" & ") == 3 for line in body)
    assert "origin & 46.0 &  & -- \\\\" in tex
    with pytest.raises(SegaugError):
        to_latex([])


# --- provenance ----------------------------------------------------------------------------------


@pytest.mark.workflow
def test_provenance_keys_stable_and_config_hash(tmp_path):
    cfg = {"seeds": [0, 1], "models": {"a": {"arch": "X"}}}
    p1 = provenance(cfg, [0, 1], {"generator": "org/model"}, extra={"k": 1})
    p2 = provenance(json.loads(json.dumps(cfg)), [0, 1], {"generator": "org/model"}, extra={"k": 1})
    assert p1 == p2
    for key in ("config_sha256", "code_version", "packages", "python", "seeds", "model_ids", "extra"):
        assert key in p1
    assert not any("time" in k or "date" in k for k in p1)
    assert set(p1["packages"]) >= {
        "numpy",
        "torch",
        "torchvision",
        "segmentation-models-pytorch",
        "transformers",
        "diffusers",
        "lightning",
        "snakemake",
    }
    assert p1["packages"]["numpy"] == np.__version__
    assert config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})
    assert config_hash(cfg) != config_hash({**cfg, "seeds": [0, 1, 2]})
    assert p1["code_version"]
    assert code_version(tmp_path).startswith("segaug ")  # no git checkout: the package version

    art = tmp_path / "table.csv"
    art.write_text("a,b\n1,2\n")
    side = write_sidecar(art, p1)
    first = side.read_bytes()
    assert side == sidecar_path(art) == tmp_path / "table.csv.provenance.json"
    write_sidecar(art, provenance(cfg, [0, 1], {"generator": "org/model"}, extra={"k": 1}))
    assert side.read_bytes() == first
    rec = json.loads(first)
    assert rec["artifact"] == "table.csv" and len(rec["artifact_sha256"]) == 64


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_subcommands_end_to_end(tmp_path):
    cli = _script()
    prov = json.dumps(
        {"config": {"table2": {"model": "deeplabv3plus_r50"}}, "seeds": [0, 1], "model_ids": {"generator": "org/sdxl"}}
    )
    out = tmp_path / "out"

    files = _metric_files(tmp_path / "m")
    cli.main(
        [
            "table2",
            "--metrics",
            *map(str, files),
            "--out-csv",
            str(out / "t2.csv"),
            "--out-md",
            str(out / "t2.md"),
            "--out-tex",
            str(out / "t2.tex"),
            "--out-bars",
            str(out / "t2.png"),
            "--provenance-json",
            prov,
        ]
    )
    assert (out / "t2.csv").read_text().splitlines()[1].startswith("background,82.0,2.83,82.0,0.0,0.0,89.32,88.69")
    assert (out / "t2.md").read_text().startswith("# Table 2: per-class IoU (%) of deeplabv3plus_r50 on voc7")
    assert "\\toprule" in (out / "t2.tex").read_text()
    _png(out / "t2.png")
    for name in ("t2.csv", "t2.md", "t2.tex", "t2.png"):
        rec = json.loads((out / f"{name}.provenance.json").read_text())
        assert rec["seeds"] == [0, 1] and rec["model_ids"] == {"generator": "org/sdxl"}
        assert rec["extra"]["made_by"] == "scripts/figures.py table2" and len(rec["extra"]["inputs"]) == 4

    curves = [_curve(tmp_path / "c" / f"{t}{s}.csv", [(10, 0.2 + s / 10), (20, 0.3)]) for t in "of" for s in (0, 1)]
    cli.main(
        [
            "figure5",
            "--curve",
            "D_origin",
            *map(str, curves[:2]),
            "--curve",
            "D_final",
            *map(str, curves[2:]),
            "--out",
            str(out / "f5.png"),
            "--provenance-json",
            prov,
        ]
    )
    _png(out / "f5.png")
    assert (out / "f5.png.provenance.json").exists()

    root, priors, sset = _synthetic_set(tmp_path / "s")
    cli.main(
        [
            "samples",
            "--set",
            str(sset),
            "--priors",
            str(priors),
            "--dataset-root",
            str(root),
            "--n",
            "2",
            "--out",
            str(out / "samples.png"),
        ]
    )
    _png(out / "samples.png")
    assert not (out / "samples.png.provenance.json").exists()  # no --provenance-json: no sidecar
    with pytest.raises(SegaugError, match="prior missing"):
        cli.main(
            [
                "samples",
                "--set",
                str(sset),
                "--priors",
                str(tmp_path),
                "--dataset-root",
                str(root),
                "--out",
                str(out / "x.png"),
            ]
        )

    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "plan": "balance-auto",
                "n_balance": 27,
                "exclude": ["background"],
                "num_origin": 60,
                "num_generated": 30,
                "class_names": CLASSES,
                "images_per_class_origin": [60, 10, 3],
                "images_per_class_final": [60, 27, 27],
                "entropy_origin": 0.62,
                "entropy_final": 1.0,
                "cir_origin": 0.3,
                "cir_final": 1.0,
            }
        )
    )
    cli.main(["histogram", "--plan", str(plan), "--out", str(out / "hist.png"), "--provenance-json", prov])
    in_process = _png(out / "hist.png")
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/figures.py"),
            "histogram",
            "--plan",
            str(plan),
            "--out",
            str(out / "hist2.png"),
        ],
        check=False,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
    )
    assert p.returncode == 0, p.stderr
    assert (out / "hist2.png").read_bytes() == in_process  # same bytes across processes

    bad = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/figures.py"),
            "table2",
            "--metrics",
            *map(str, files),
            "--out-csv",
            str(out / "t.csv"),
            "--provenance-json",
            '{"seeds": [0]}',
        ],
        check=False,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
    )
    assert bad.returncode == 2 and 'at least "config"' in bad.stderr
    assert not (out / "t.csv").exists()  # a bad --provenance-json fails before anything is written
