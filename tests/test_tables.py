import json
import math

import pytest

from segaug.errors import SegaugError
from segaug.report.tables import load_runs, runs_table, table1, to_markdown


def _metrics(tmp_path, model, split, trainset, seed, miou):
    p = tmp_path / f"{model}_{split}_{trainset}_{seed}.json"
    run = {"dataset": "d", "split": split, "model": model, "trainset": trainset, "loss": "ce", "seed": seed}
    p.write_text(json.dumps({"miou": miou, "pixel_acc": 0.9, "run": run}))
    return p


def test_table1_mean_std_delta(tmp_path):
    files = [
        _metrics(tmp_path, "deeplabv3plus_r50", "voc7", "origin", 0, 0.40),
        _metrics(tmp_path, "deeplabv3plus_r50", "voc7", "origin", 1, 0.42),
        _metrics(tmp_path, "deeplabv3plus_r50", "voc7", "paste-random", 0, 0.45),
        _metrics(tmp_path, "deeplabv3plus_r50", "voc7", "paste-random", 1, 0.49),
    ]
    rows = table1(load_runs(files), "paste-random")
    assert [r["training_set"] for r in rows] == ["D_origin", "D_final"]
    o, f = rows
    assert o["miou_mean"] == 41.0 and f["miou_mean"] == 47.0
    assert math.isclose(o["miou_std"], round(math.sqrt(2), 2))  # sample std of 40, 42
    assert f["delta"] == 6.0 and o["delta"] == ""
    assert o["paper_miou"] == 46.54 and f["paper_miou"] == 50.27
    assert o["seeds"] == "0 1"
    md = to_markdown(rows)
    assert md.splitlines()[0].startswith("| model | split | training_set")


def test_runs_table_one_row_per_run(tmp_path):
    files = [_metrics(tmp_path, "m", "s", "origin", k, 0.1 * k) for k in range(3)]
    rows = runs_table(load_runs(files))
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert rows[2]["miou"] == 20.0


def test_metrics_without_run_keys_is_a_clear_error(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"miou": 0.5, "pixel_acc": 0.5}))
    with pytest.raises(SegaugError, match="lacks run keys"):
        load_runs([p])
