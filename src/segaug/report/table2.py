"""Table 2 of the paper: per-class IoU (%) of one model on one split, D_origin vs D_final.

One row per class (in the metrics' class order) and a last ``mIoU`` row. Columns:

- ``class``;
- ``origin_mean`` / ``origin_std`` and ``final_mean`` / ``final_std`` — IoU (%) over the seeds of
  D_origin (training set ``origin``) and D_final (the training set given as ``d_final``, e.g.
  ``gen-default``): the mean and the sample standard deviation (ddof=1; 0 with one seed), both
  rounded to 2 decimals. A class absent from the validation set of a run (IoU ``null`` in its
  metrics) is left out of that run's statistics; absent in all runs, the cell is empty;
- ``delta`` — ``final_mean - origin_mean`` (of the unrounded means);
- ``paper_origin`` / ``paper_final`` — the paper's values (Che et al., ICPRAM 2025, Table 2:
  DeepLabV3+ on VOC7), filled only when the split is ``voc7`` and the model one of
  :data:`PAPER_MODELS`; empty otherwise (the columns stay, as in Table 1, so the CSV schema
  does not depend on the split).

The ``mIoU`` row uses each run's own mIoU (``miou`` of its metrics.json), not the mean of the
rows above.

About the paper's numbers: the paper prints Table 2 across two lines, so the mapping of values
to classes below is our best reading (VOC class order: background, aeroplane, ..., tvmonitor).
As a check, the mean of each column reproduces the printed mIoU to rounding (46.53 vs 46.54
printed; 50.27) — that confirms the set of values, not their order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from segaug.data.classnames import VOC_CLASSES
from segaug.errors import SegaugError
from segaug.report.tables import RUN_KEYS, mean_std, paper_model, read_metrics

log = logging.getLogger(__name__)

PAPER_SPLIT = "voc7"
PAPER_MODELS = ("deeplabv3plus_r50",)
# fmt: off
PAPER_TABLE2 = {
    "origin": dict(zip(VOC_CLASSES, (
        89.32, 75.35, 43.90, 53.95, 38.03, 51.72, 50.81, 67.41, 72.0, 7.77, 24.61,
        41.67, 45.16, 42.29, 66.08, 72.71, 42.00, 14.07, 24.68, 40.74, 12.96))),
    "final": dict(zip(VOC_CLASSES, (
        88.69, 67.67, 45.35, 57.00, 38.07, 56.08, 70.14, 70.67, 73.46, 28.81, 45.45,
        39.48, 36.27, 50.10, 55.80, 71.49, 40.29, 21.91, 18.10, 48.13, 32.72))),
}
PAPER_MIOU = {"origin": 46.54, "final": 50.27}
# fmt: on


def load_class_runs(paths: Iterable[str | Path]) -> list[dict]:
    """One record per metrics.json: its run keys, class names, per-class IoU (%) and mIoU (%)."""
    runs = []
    for p in paths:
        m, run = read_metrics(p)
        if "iou" not in m or "class_names" not in m:
            raise SegaugError(f"{p}: metrics file has no per-class IoU ('iou', 'class_names'); re-run evaluation")
        iou = m["iou"]
        runs.append(
            {
                **{k: run[k] for k in RUN_KEYS},
                "classes": list(m["class_names"]),
                "iou": {c: None if iou.get(c) is None else 100.0 * iou[c] for c in m["class_names"]},
                "miou": 100.0 * m["miou"],
                "path": str(p),
            }
        )
    return runs


def select_runs(
    runs: Sequence[Mapping], model: str | None = None, split: str | None = None, loss: str | None = None
) -> tuple[list[Mapping], str, str]:
    """The runs of one model on one split (and loss, when given); returns (runs, model, split).

    ``model`` / ``split`` may be omitted when the runs hold only one; several is an error.
    """

    def pick(key, value, pool):
        if value is not None:
            return value
        found = sorted({str(r[key]) for r in pool})
        if len(found) != 1:
            raise SegaugError(f"Table 2: the metrics hold {len(found)} {key}s {found}; choose one with --{key}")
        return found[0]

    pool = [r for r in runs if loss is None or r["loss"] == loss]
    model = pick("model", model, pool)
    pool = [r for r in pool if r["model"] == model]
    split = pick("split", split, pool)
    pool = [r for r in pool if r["split"] == split]
    if not pool:
        raise SegaugError(
            f"Table 2: no metrics of model {model!r} on split {split!r}" + (f" with loss {loss!r}" if loss else "")
        )
    return pool, model, split


def _stat(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std of the non-null values; (None, None) when all are null."""
    v = [x for x in values if x is not None]
    return mean_std(v) if v else (None, None)


def _r(x: float | None) -> float | str:
    return "" if x is None else round(x, 2)


def _group(runs: Sequence[Mapping], trainset: str) -> list[Mapping]:
    """The runs of one training set; one per seed (two runs of a seed would mix losses or files)."""
    grp = [r for r in runs if r["trainset"] == trainset]
    if not grp:
        raise SegaugError(f"Table 2: no metrics for training set {trainset!r}: its runs are missing")
    seen: dict = {}
    for r in grp:
        if r["seed"] in seen:
            raise SegaugError(
                f"Table 2: two runs of training set {trainset!r} with seed {r['seed']} "
                f"({seen[r['seed']]} and {r['path']}, losses {seen_loss(grp, r['seed'])}); choose one loss with --loss"
            )
        seen[r["seed"]] = r["path"]
    return grp


def seen_loss(runs: Sequence[Mapping], seed) -> list[str]:
    return sorted({str(r["loss"]) for r in runs if r["seed"] == seed})


def has_paper_values(model: str, split: str) -> bool:
    return split == PAPER_SPLIT and paper_model(model) in PAPER_MODELS


def table2_rows(
    runs: Sequence[Mapping],
    d_final: str = "gen-default",
    model: str | None = None,
    split: str | None = None,
    loss: str | None = "ce",
) -> list[dict]:
    """Table 2 rows (see the module docstring) from :func:`load_class_runs` records."""
    pool, model, split = select_runs(runs, model, split, loss)
    origin, final = _group(pool, "origin"), _group(pool, d_final)
    classes = origin[0]["classes"]
    for r in [*origin, *final]:
        if r["classes"] != classes:
            raise SegaugError(f"{r['path']}: class names {r['classes']} differ from {classes}; same dataset?")
    paper = has_paper_values(model, split)
    if split == PAPER_SPLIT and not paper:
        log.info("Table 2: the paper's values are of %s; none shown for model %s", PAPER_MODELS, model)
    rows = []
    for name, values_o, values_f, p_o, p_f in [
        *(
            (
                c,
                [r["iou"][c] for r in origin],
                [r["iou"][c] for r in final],
                PAPER_TABLE2["origin"].get(c, ""),
                PAPER_TABLE2["final"].get(c, ""),
            )
            for c in classes
        ),
        ("mIoU", [r["miou"] for r in origin], [r["miou"] for r in final], PAPER_MIOU["origin"], PAPER_MIOU["final"]),
    ]:
        (om, os_), (fm, fs) = _stat(values_o), _stat(values_f)
        rows.append(
            {
                "class": name,
                "origin_mean": _r(om),
                "origin_std": _r(os_),
                "final_mean": _r(fm),
                "final_std": _r(fs),
                "delta": _r(fm - om) if None not in (om, fm) else "",
                "paper_origin": p_o if paper else "",
                "paper_final": p_f if paper else "",
            }
        )
    return rows


def seeds_of(runs: Sequence[Mapping], trainset: str) -> list:
    return sorted(r["seed"] for r in runs if r["trainset"] == trainset)


def title(model: str, split: str, d_final: str, seeds_origin: Sequence, seeds_final: Sequence) -> str:
    def s(x):
        return " ".join(map(str, x))

    return (
        f"Table 2: per-class IoU (%) of {model} on {split}, D_origin vs D_final ({d_final}), "
        f"mean ± std over seeds (D_origin: {s(seeds_origin)}; D_final: {s(seeds_final)})"
    )


def iou_series(rows: Sequence[Mapping]) -> tuple[list[str], dict, dict]:
    """(class names, {label: (means, stds)}, {label: paper values}) of the class rows, for the bars.

    The ``mIoU`` row is left out; empty cells become NaN (no bar). The paper dict is empty when
    the rows carry no paper values.
    """
    nan = float("nan")
    body = [r for r in rows if r["class"] != "mIoU"]
    names = [r["class"] for r in body]

    def col(key):
        return [nan if r[key] == "" else float(r[key]) for r in body]

    series = {"D_origin": (col("origin_mean"), col("origin_std")), "D_final": (col("final_mean"), col("final_std"))}
    paper = {}
    if any(r["paper_origin"] != "" for r in body):
        paper = {"D_origin": col("paper_origin"), "D_final": col("paper_final")}
    return names, series, paper
