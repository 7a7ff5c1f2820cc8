"""The thesis comparison: methods x per-class IoU, mean ± std over seeds, and its figures.

Rows come from config ``thesis.rows``: a name, a training set (``origin``, ``paste-<method>``,
``gen-<variant>``) and a loss (``ce``, ``focal``, ``weighted_ce``), e.g. "focal loss" =
(origin, focal). Each row's per-class IoU and mIoU are the mean and sample std over the seeds
of its ``metrics.json`` files.

Figures (matplotlib, Agg backend):

- :func:`iou_bar_figure` — per-class IoU bars with error bars (std over seeds), one bar per
  method, classes on the x axis; mIoU in the legend.
- :func:`paste_examples_figure` — a grid of pasted training images with each placement drawn:
  the object's box and its class / reason (surface share, VLM or fallback).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from segaug.errors import SegaugError
from segaug.io import atomic_path


def load_class_runs(paths: Sequence[str | Path]) -> list[dict]:
    """Run keys, class names, per-class IoU (%) and mIoU (%) of each metrics file (as Table 2)."""
    from segaug.report.table2 import load_class_runs as load

    return load(paths)


def _stats(values: Sequence[float | None]) -> tuple[float, float]:
    v = np.array([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def vlm_placed_label(set_dirs: Sequence[str | Path]) -> str:
    """Share of the objects the VLM placed over VLM pasted sets (their summary.json), e.g.
    ``"37% (104 of 280 objects)"``; the rest took the rule-based fallback."""
    placed = asked = 0
    for d in set_dirs:
        path = Path(d) / "summary.json"
        try:
            stats = json.loads(path.read_text())["placer_stats"]
            placed += int(stats["vlm_accepted"])
            asked += int(stats["vlm_accepted"]) + int(stats["fallback"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SegaugError(f"{path}: not the summary of a VLM pasted set ({e}); rerun its paste job") from None
    return f"{placed / asked:.0%} ({placed} of {asked} objects)" if asked else "no objects"


def thesis_rows(
    rows: Sequence[Mapping], runs: Sequence[Mapping], vlm_placed: Mapping[str, str] | None = None
) -> list[dict]:
    """One row per method: name, trainset, loss, seeds, IoU per class and mIoU as mean ± std.

    ``vlm_placed`` (training set -> :func:`vlm_placed_label`) adds a ``vlm_placed`` column that
    labels each VLM-pasted row with the share of objects the VLM really placed."""
    if not runs:
        raise SegaugError("thesis table: no metrics given")
    classes = runs[0]["classes"]
    out = []
    for spec in rows:
        grp = [r for r in runs if r["trainset"] == spec["trainset"] and r["loss"] == spec["loss"]]
        if not grp:
            raise SegaugError(
                f"thesis row {spec['name']!r}: no metrics for training set {spec['trainset']!r} "
                f"with loss {spec['loss']!r}"
            )
        row = {
            "method": spec["name"],
            "trainset": spec["trainset"],
            "loss": spec["loss"],
            "seeds": " ".join(str(s) for s in sorted(r["seed"] for r in grp)),
        }
        if vlm_placed:
            row["vlm_placed"] = vlm_placed.get(spec["trainset"], "")
        for c in classes:
            mean, std = _stats([r["iou"][c] for r in grp])
            row[c] = f"{mean:.2f} ± {std:.2f}"
        mean, std = _stats([r["miou"] for r in grp])
        row["mIoU"] = f"{mean:.2f} ± {std:.2f}"
        row["_iou"] = {c: _stats([r["iou"][c] for r in grp]) for c in classes}
        row["_miou"] = (mean, std)
        out.append(row)
    return out


def public(rows: Sequence[Mapping]) -> list[dict]:
    """Rows without the private numeric fields (for CSV / Markdown)."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png")


def iou_bar_figure(rows: Sequence[Mapping], path: str | Path, title: str = "") -> None:
    """Per-class IoU bars with std error bars, one colour per method (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = list(rows[0]["_iou"])
    n = len(rows)
    width = 0.8 / n
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(classes) + 2), 4))
    for k, r in enumerate(rows):
        means = [r["_iou"][c][0] for c in classes]
        stds = [r["_iou"][c][1] for c in classes]
        ax.bar(
            x + (k - (n - 1) / 2) * width,
            means,
            width,
            yerr=stds,
            capsize=2,
            label=f"{r['method']} (mIoU {r['_miou'][0]:.1f})",
        )
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title or "Per-class IoU, mean ± std over seeds")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def paste_examples_figure(sets: Mapping[str, str | Path], path: str | Path, per_method: int = 4) -> None:
    """A grid: one row per pasted set (method), ``per_method`` images with their placements.

    ``sets`` maps a method name to a pasted-set directory (images/ + manifest.jsonl). The first
    images that received a paste are shown, each box labelled with class and reason.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from segaug.data.canonical import image_path, read_image

    fig, axes = plt.subplots(len(sets), per_method, figsize=(3 * per_method, 2.6 * len(sets)), squeeze=False)
    for row, (method, d) in enumerate(sets.items()):
        d = Path(d)
        lines = [json.loads(x) for x in (d / "manifest.jsonl").read_text().splitlines() if x.strip()]
        by_image: dict[str, list[dict]] = {}
        for m in lines:
            by_image.setdefault(m["output_id"], []).append(m)
        for col in range(per_method):
            ax = axes[row][col]
            ax.axis("off")
            if col >= len(by_image):
                continue
            oid = sorted(by_image)[col]
            ax.imshow(read_image(image_path(d, oid)))
            for m in by_image[oid]:
                x0, y0, w, h = m["x"], m["y"], m["width"], m["height"]
                ax.add_patch(Rectangle((x0, y0), w, h, fill=False, color="yellow", linewidth=1))
                ax.text(
                    x0,
                    y0 - 1,
                    f"{m['class_name']}: {m['reason']}",
                    fontsize=5,
                    color="yellow",
                    va="bottom",
                    clip_on=True,
                )
            ax.set_title(f"{method}: {oid}", fontsize=7)
    _save(fig, path)
    plt.close(fig)
