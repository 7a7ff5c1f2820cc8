"""Tables 3-7 and the synthetic-set table from metrics, plans and quality files."""

import csv
import json
import subprocess
import sys

import pytest

from conftest import ROOT
from segaug.errors import SegaugError
from segaug.report.ablations import PAPER_TABLE7, ablation_rows, table4_rows, table7_rows
from segaug.report.tables import load_runs


def _metrics(tmp_path, trainset, seed, miou):
    p = tmp_path / f"{trainset}_{seed}.json"
    run = {
        "dataset": "voc2007",
        "split": "voc7",
        "model": "deeplabv3plus_r50",
        "trainset": trainset,
        "loss": "ce",
        "seed": seed,
    }
    p.write_text(json.dumps({"miou": miou, "pixel_acc": 0.9, "run": run}))
    return p


def test_table5_rows_in_config_order_with_paper_values(tmp_path):
    files = [
        _metrics(tmp_path, ts, s, v)
        for ts, vals in (
            ("gen-default", (0.50, 0.52)),
            ("gen-prompt_caption", (0.46, 0.48)),
            ("gen-prompt_classes", (0.47, 0.47)),
        )
        for s, v in enumerate(vals)
    ]
    rows = ablation_rows("table5", ["gen-prompt_caption", "gen-prompt_classes", "gen-default"], load_runs(files))
    assert [r["trainset"] for r in rows] == ["gen-prompt_caption", "gen-prompt_classes", "gen-default"]
    assert [r["miou_mean"] for r in rows] == [47.0, 47.0, 51.0]
    assert [r["paper_miou"] for r in rows] == [47.24, 48.21, 50.27]
    assert rows[2]["miou_std"] == pytest.approx(1.41, abs=0.01) and rows[1]["miou_std"] == 0.0
    with pytest.raises(SegaugError, match="no metrics for training set 'gen-inpaint'"):
        ablation_rows("table6", ["gen-inpaint"], load_runs(files))


def test_table4_sizes_balance_and_quality():
    runs = [
        {"trainset": ts, "seed": s, "miou": m, "split": "voc7"}
        for ts, s, m in (("origin", 0, 46.0), ("origin", 1, 47.0), ("gen-n27", 0, 50.0), ("gen-n27", 1, 50.5))
    ]
    plans = {
        "balance-auto": {
            "num_origin": 209,
            "num_generated": 216,
            "n_balance": 27,
            "entropy_origin": 3.9,
            "cir_origin": 0.25,
            "entropy_final": 4.0,
            "cir_final": 0.23,
        },
        "balance-27": {
            "num_origin": 209,
            "num_generated": 216,
            "n_balance": 27,
            "entropy_origin": 3.9,
            "cir_origin": 0.25,
            "entropy_final": 4.0,
            "cir_final": 0.23,
        },
    }
    quality = [
        {"variant": "n27", "seed": s, "clip_score_mean": c, "fid": f} for s, c, f in ((0, 30.0, 40.0), (1, 32.0, 42.0))
    ]
    rows = table4_rows(["origin", "gen-n27"], runs, plans, quality, {"n27": "balance-27"})
    o, g = rows
    assert (o["R/S"], o["entropy"], o["cir"], o["clip_score"]) == ("209/0", 3.9, 0.25, "")
    assert (g["R/S"], g["entropy"], g["cir"], g["n_balance"]) == ("209/216", 4.0, 0.23, 27)
    assert (g["clip_score"], g["fid"]) == (31.0, 41.0)
    assert (g["paper_entropy"], g["paper_cir"], g["paper_miou"]) == (4.044, 0.231, 50.27)


def test_table7_is_a_w2_by_w1_grid():
    runs = [
        {"trainset": f"gen-default_w1-{w1}_w2-{w2}", "seed": s, "miou": 40 + 10 * w1 + s, "split": "voc7"}
        for w1 in (0.6, 0.7)
        for w2 in (0.9, 1.0)
        for s in (0, 1)
    ]
    rows = table7_rows(runs)
    assert [r["w2 \\ w1"] for r in rows] == [0.9, 1.0]
    assert rows[0]["w1=0.7"] == f"47.50 ± 0.71 (paper {PAPER_TABLE7[(0.7, 0.9)]})"
    assert PAPER_TABLE7[(0.7, 0.9)] == 50.27  # the paper's best cell
    other = table7_rows([{**r, "split": "full"} for r in runs])
    assert other[0]["w1=0.7"] == "47.50 ± 0.71"  # no paper value off VOC7


def test_script_writes_csv_and_markdown(tmp_path):
    files = [_metrics(tmp_path, ts, 0, 0.5) for ts in ("origin", "gen-default")]
    csv_path, md = tmp_path / "t3.csv", tmp_path / "t3.md"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/ablation_table.py"),
            "--table",
            "table3",
            "--rows",
            '["origin", "gen-default"]',
            "--metrics",
            *map(str, files),
            "--out-csv",
            str(csv_path),
            "--out-md",
            str(md),
        ],
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
    )
    rows = list(csv.DictReader(open(csv_path)))
    assert [(r["trainset"], r["miou_mean"], r["paper_miou"]) for r in rows] == [
        ("origin", "50.0", "46.54"),
        ("gen-default", "50.0", "50.27"),
    ]
    assert md.read_text().startswith("# Table 3")
