"""Tables from per-run metrics.

Every ``metrics.json`` (written by evaluation) carries a ``run`` dict — dataset, split, model,
trainset, loss, seed — so tables are built from the metrics files alone.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from segaug.errors import SegaugError
from segaug.io import read_json, write_text

RUN_KEYS = ("dataset", "split", "model", "trainset", "loss", "seed")

# Che et al. (ICPRAM 2025), Table 1: mIoU (%) of the paper's models, keyed by the model names
# of config/config.yaml. Shown beside ours for comparison.
PAPER_TABLE1 = {
    ("deeplabv3plus_r50", "origin"): [46.54, 29.91, 38.21, 49.40, 58.20, 61.84],
    ("deeplabv3plus_r50", "final"): [50.27, 33.87, 41.45, 52.22, 60.11, 63.06],
    ("pspnet_r50", "origin"): [47.04, 31.87, 38.96, 46.62, 57.48, 62.39],
    ("pspnet_r50", "final"): [50.01, 34.67, 41.46, 49.34, 61.09, 63.78],
    ("mask2former_r50", "origin"): [48.28, 34.85, 39.63, 51.37, 59.94, 63.65],
    ("mask2former_r50", "final"): [49.69, 35.53, 40.29, 51.77, 60.02, 62.56],
}
PAPER_SPLITS = ["voc7", "voc12_92", "voc12_183", "voc12_366", "voc12_732", "voc12_1464"]


def paper_model(model: str) -> str:
    """The paper model a config model name stands for: ``<name>_mmseg`` (config/config.yaml's
    names for the same models on the MMSegmentation backend) is ``<name>``."""
    return model[: -len("_mmseg")] if model.endswith("_mmseg") else model


def paper_miou(model: str, split: str, role: str) -> float | None:
    row = PAPER_TABLE1.get((paper_model(model), role))
    if row is None or split not in PAPER_SPLITS:
        return None
    return row[PAPER_SPLITS.index(split)]


def read_metrics(path: str | Path) -> tuple[dict, dict]:
    """A metrics.json and its ``run`` dict; a file without every run key is a clear error."""
    m = read_json(path)
    run = m.get("run") or {}
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        raise SegaugError(f"{path}: metrics file lacks run keys {missing}; re-run evaluation")
    return m, run


def load_runs(paths: Iterable[str | Path]) -> list[dict]:
    """One flat record per metrics file: the run keys plus mIoU and pixel accuracy (%)."""
    runs = []
    for p in paths:
        m, run = read_metrics(p)
        runs.append(
            {
                **{k: run[k] for k in RUN_KEYS},
                "miou": 100.0 * m["miou"],
                "pixel_acc": 100.0 * m["pixel_acc"],
                "path": str(p),
            }
        )
    return runs


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of the per-seed values."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def table1(runs: list[dict], d_final: str) -> list[dict]:
    """Rows model x split x {D_origin, D_final}: mean and std of mIoU over seeds, delta.

    ``d_final`` names the trainset that plays D_final (e.g. ``paste-random``). The std is the
    sample standard deviation (ddof=1) over seeds; 0 with a single seed.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["model"], r["split"], r["trainset"]), []).append(r)
    models = list(dict.fromkeys(r["model"] for r in runs))
    splits = list(dict.fromkeys(r["split"] for r in runs))
    rows = []
    for model in models:
        for split in splits:
            origin = groups.get((model, split, "origin"))
            final = groups.get((model, split, d_final))
            if not origin and not final:
                continue
            mean_o = mean_std([r["miou"] for r in origin])[0] if origin else math.nan
            for role, trainset, grp in (("origin", "origin", origin), ("final", d_final, final)):
                if not grp:
                    continue
                mean, std = mean_std([r["miou"] for r in grp])
                paper = paper_miou(model, split, role)
                rows.append(
                    {
                        "model": model,
                        "split": split,
                        "training_set": "D_origin" if role == "origin" else "D_final",
                        "trainset": trainset,
                        "seeds": " ".join(str(s) for s in sorted(r["seed"] for r in grp)),
                        "miou_mean": round(mean, 2),
                        "miou_std": round(std, 2),
                        "delta": "" if role == "origin" else round(mean - mean_o, 2),
                        "paper_miou": "" if paper is None else paper,
                    }
                )
    return rows


def runs_table(runs: list[dict]) -> list[dict]:
    """One row per run (used by the per-seed target)."""
    keys = RUN_KEYS + ("miou", "pixel_acc")
    rows = [{k: (round(r[k], 2) if k in ("miou", "pixel_acc") else r[k]) for k in keys} for r in runs]
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in RUN_KEYS))


def to_csv(rows: list[dict]) -> str:
    if not rows:
        raise SegaugError("no rows to write: no metrics matched the table")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def to_markdown(rows: list[dict], title: str | None = None) -> str:
    cols = list(rows[0])
    lines = [f"# {title}\n"] if title else []
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict], csv_path=None, md_path=None, title=None) -> None:
    if csv_path:
        write_text(csv_path, to_csv(rows))
    if md_path:
        write_text(md_path, to_markdown(rows, title))
