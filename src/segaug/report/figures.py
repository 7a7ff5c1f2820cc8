"""The paper's figures: training curves (Figure 5), sample grids, class histograms, IoU bars.

- :func:`figure5` — val mIoU (%) over training steps, one colour per training set (D_origin,
  D_final): the mean over seeds as a line, the min–max range over seeds as a shaded band, and
  the best step of each mean curve starred and annotated.
- :func:`sample_grid` — one row per synthetic sample: the real image, its image prior V_I, its
  label prior V_S, the blended prior the generator was conditioned on and the generated image;
  the text prompt, wrapped, under each row.
- :func:`class_histogram` — images containing each class before (D_origin) and after
  (D_final = D_origin ∪ D_gen) class balancing (the paper's Algorithm 1), side-by-side bars;
  entropy / CIR before → after in the title and n_balance as a dashed line when given.
- :func:`per_class_iou_bars` — Table 2 as bars: per-class IoU (%) of D_origin vs D_final,
  bars at the mean over seeds with ± one sample std as error bars; the paper's values as
  markers when given.

Determinism: figures are drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot state)
under matplotlib's default style (a user's matplotlibrc does not leak in), saved with the
Agg renderer at a fixed dpi and with the PNG ``Software`` tag (SVG ``Date``, PDF dates)
removed. The same inputs then give the same bytes with the same matplotlib / FreeType /
Pillow / numpy versions (checked in ``tests/test_figures.py``, across processes too); other
versions may anti-alias text differently, so compare pixels, not bytes, across environments.
Every file is written atomically (:func:`segaug.io.atomic_path`).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from segaug.errors import SegaugError
from segaug.io import atomic_path

log = logging.getLogger(__name__)

DPI = 120
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
SAMPLE_COLUMNS = (
    ("image", "image"),
    ("image_prior", "image prior $V_I$"),
    ("label_prior", "label prior $V_S$"),
    ("blended_prior", "blended prior"),
    ("generated", "generated"),
)
_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


# --- plumbing -----------------------------------------------------------------------------


@contextlib.contextmanager
def _style():
    """matplotlib's default style, whatever the user's rc; a fixed SVG hash salt."""
    import matplotlib
    import matplotlib.style

    matplotlib.use("Agg")
    with matplotlib.style.context("default"), matplotlib.rc_context({"svg.hashsalt": "segaug"}):
        yield


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def save_figure(fig, path: str | Path) -> None:
    """Save ``fig`` atomically; the format follows the suffix (png, svg, pdf), no timestamps."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight", metadata=_METADATA.get(fmt))
    log.info("figure written to %s", path)


# --- Figure 5: training curves ---------------------------------------------------------------


def read_curve(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps, val mIoU in %) of a training ``curve.csv`` (columns step, val_miou[, ...]).

    ``val_miou`` is a fraction in the file; NaN (a validation with no valid class) is kept.
    """
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise SegaugError(f"{path}: cannot read training curve ({e})") from None
    if not rows or "step" not in rows[0] or "val_miou" not in rows[0]:
        raise SegaugError(f"{path}: not a training curve (need columns step, val_miou and at least one row)")
    steps = np.array([int(r["step"]) for r in rows], dtype=int)
    miou = np.array([float(r["val_miou"]) for r in rows], dtype=float) * 100.0
    return steps, miou


def mean_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Mean, std (ddof=1; 0 with one seed), min and max over seeds at every step.

    Steps are the union of the seeds' steps; at each step only the seeds that logged a finite
    value there count (``n``). Steps with no finite value are dropped.
    """
    steps = np.array(sorted({int(s) for st, _ in curves for s in st}), dtype=int)
    table = np.full((len(curves), len(steps)), np.nan)
    index = {s: i for i, s in enumerate(steps)}
    for k, (st, v) in enumerate(curves):
        for s, x in zip(st, v):
            table[k, index[int(s)]] = x
    n = np.sum(np.isfinite(table), axis=0)
    keep = n > 0
    table, steps, n = table[:, keep], steps[keep], n[keep]
    with warnings.catch_warnings():  # ddof=1 with a single finite value: NaN, replaced by 0
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(table, axis=0)
        std = np.where(n > 1, np.nanstd(table, axis=0, ddof=1), 0.0)
    return {
        "steps": steps,
        "mean": mean,
        "std": std,
        "min": np.nanmin(table, axis=0),
        "max": np.nanmax(table, axis=0),
        "n": n,
    }


def best_step(steps: Sequence[int], values: Sequence[float]) -> tuple[int, float]:
    """(step, value) of the highest finite value; the earliest step on ties (as training does)."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    if not finite.any():
        raise SegaugError("training curve has no finite val mIoU: no best step")
    i = int(np.argmax(np.where(finite, v, -np.inf)))
    return int(steps[i]), float(v[i])


def figure5(
    curves: Mapping[str, Sequence[str | Path]],
    out_png: str | Path,
    title: str = "Figure 5: validation mIoU during training",
) -> dict[str, tuple[int, float]]:
    """Val mIoU (%) over training steps per training set; returns {label: (best step, mIoU)}.

    ``curves`` maps a legend label (``D_origin``, ``D_final``) to the ``curve.csv`` files of its
    seeds. Line: the mean over seeds; band: min–max over seeds (drawn with two seeds or more);
    star: the best step of the mean curve.
    """
    if not curves:
        raise SegaugError("Figure 5: no training curves given")
    best = {}
    with _style():
        fig = _new_figure(7, 4.2)
        ax = fig.subplots()
        for k, (label, files) in enumerate(curves.items()):
            if not files:
                raise SegaugError(f"Figure 5: no curve files for {label!r}")
            c = mean_curve([read_curve(p) for p in files])
            color = COLORS[k % len(COLORS)]
            step, value = best_step(c["steps"], c["mean"])
            best[label] = (step, value)
            n = len(files)
            ax.plot(
                c["steps"],
                c["mean"],
                color=color,
                linewidth=1.6,
                label=f"{label}: mean of {n} seed{'s' if n > 1 else ''} (best {value:.2f} at step {step})",
            )
            if n > 1:
                ax.fill_between(
                    c["steps"],
                    c["min"],
                    c["max"],
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                    label=f"{label}: min–max over seeds",
                )
            ax.plot(
                [step],
                [value],
                marker="*",
                markersize=15,
                color=color,
                markeredgecolor="black",
                linestyle="none",
                zorder=5,
            )
            ax.annotate(
                f"{value:.1f}",
                (step, value),
                textcoords="offset points",
                xytext=(0, 9),
                ha="center",
                fontsize=8,
                color=color,
            )
        ax.set_xlabel("training step (iterations)")
        ax.set_ylabel("val mIoU (%)")
        ax.set_title(title)
        ax.margins(y=0.12)  # room for the star labels
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        save_figure(fig, out_png)
    return best


# --- sample grid ----------------------------------------------------------------------------


def _as_array(x) -> np.ndarray | None:
    """An image given as an array or a path (None: no panel)."""
    if x is None or isinstance(x, np.ndarray):
        return x
    from PIL import Image

    try:
        with Image.open(x) as im:
            return np.asarray(im.convert("L" if im.mode in ("L", "1", "I", "I;16") else "RGB"))
    except FileNotFoundError:
        raise SegaugError(f"{x}: image not found") from None
    except OSError as e:
        raise SegaugError(f"{x}: cannot read image ({e})") from None


def _show(ax, image: np.ndarray | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if image is None:
        ax.text(0.5, 0.5, "n/a", ha="center", va="center", fontsize=9, color="grey", transform=ax.transAxes)
        return
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")


def _aspect(images: Sequence[np.ndarray | None]) -> float:
    """Largest height / width among the images (1 when there are none)."""
    ratios = [im.shape[0] / im.shape[1] for im in images if im is not None and im.shape[1] > 0]
    return max(ratios) if ratios else 1.0


def sample_grid(rows: Sequence[Mapping], out_png: str | Path, panel: float = 2.2, wrap: int | None = None) -> None:
    """Image / image prior / label prior / blended prior / generated, one row per sample.

    Each row dict holds ``image``, ``image_prior``, ``label_prior``, ``blended_prior``,
    ``generated`` (arrays or image paths; ``None`` draws an "n/a" panel), ``prompt`` (written
    under the row, wrapped at ``wrap`` characters; default: the figure's width) and ``title``
    (written left of the row). Panels are ``panel`` inches wide; grey images (priors) are
    drawn with 0 = black, 255 = white.
    """
    if not rows:
        raise SegaugError("sample grid: no samples given")
    ncol = len(SAMPLE_COLUMNS)
    wrap = wrap or int(panel * ncol * 13)  # ~13 characters per inch at 8 pt
    images = [[_as_array(r.get(key)) for key, _ in SAMPLE_COLUMNS] for r in rows]
    prompts = [textwrap.wrap(f"prompt: {r.get('prompt') or '(none)'}", wrap) or [""] for r in rows]
    ratios = [x for ims, p in zip(images, prompts) for x in (panel * _aspect(ims), 0.1 + 0.15 * len(p))]
    with _style():
        fig = _new_figure(panel * ncol, sum(ratios))
        gs = fig.add_gridspec(2 * len(rows), ncol, height_ratios=ratios, hspace=0.08, wspace=0.05)
        for i, r in enumerate(rows):
            for j, (_, header) in enumerate(SAMPLE_COLUMNS):
                ax = fig.add_subplot(gs[2 * i, j])
                _show(ax, images[i][j])
                if i == 0:
                    ax.set_title(header, fontsize=10)
                if j == 0 and r.get("title"):
                    ax.set_ylabel(str(r["title"]), fontsize=8)
            tax = fig.add_subplot(gs[2 * i + 1, :])
            tax.axis("off")
            tax.text(0.0, 1.0, "\n".join(prompts[i]), ha="left", va="top", fontsize=8, transform=tax.transAxes)
        save_figure(fig, out_png)


# --- class histogram (Algorithm 1) ------------------------------------------------------------


def _pair(x) -> tuple[float, float] | None:
    if x is None:
        return None
    a, b = x
    return float(a), float(b)


def class_histogram(
    class_names: Sequence[str],
    counts_before: Sequence[int],
    counts_after: Sequence[int],
    out_png: str | Path,
    exclude: Sequence[str] = (),
    entropy: tuple[float, float] | None = None,
    cir: tuple[float, float] | None = None,
    n_balance: int | None = None,
    num_images: tuple[int, int] | None = None,
    title: str = "Images per class before and after class balancing",
) -> None:
    """Side-by-side bars of the images containing each class in D_origin and D_final.

    ``exclude`` names classes left out of the plot (those Algorithm 1 does not balance, e.g.
    background); ``entropy`` / ``cir`` are (before, after) pairs shown in the title; ``n_balance``
    is drawn as a dashed line (the target count of Algorithm 1); ``num_images`` = (|D_origin|,
    |D_final|) goes into the legend.
    """
    if not (len(class_names) == len(counts_before) == len(counts_after)):
        raise SegaugError(
            f"class histogram: {len(class_names)} class names but {len(counts_before)} / {len(counts_after)} counts"
        )
    keep = [i for i, n in enumerate(class_names) if n not in set(exclude)]
    if not keep:
        raise SegaugError("class histogram: every class is excluded")
    names = [class_names[i] for i in keep]
    before = [int(counts_before[i]) for i in keep]
    after = [int(counts_after[i]) for i in keep]
    stats = []
    if _pair(entropy):
        stats.append("entropy {:.3f} → {:.3f}".format(*_pair(entropy)))
    if _pair(cir):
        stats.append("CIR {:.3f} → {:.3f}".format(*_pair(cir)))
    x = np.arange(len(names))
    with _style():
        fig = _new_figure(max(6.0, 0.45 * len(names) + 2), 4.2)
        ax = fig.subplots()
        size_o, size_f = (f" ({num_images[0]} images)", f" ({num_images[1]} images)") if num_images else ("", "")
        b1 = ax.bar(x - 0.2, before, 0.4, color=COLORS[0], label=f"before: D_origin{size_o}")
        b2 = ax.bar(x + 0.2, after, 0.4, color=COLORS[1], label=f"after: D_final = D_origin ∪ D_gen{size_f}")
        for bars in (b1, b2):
            ax.bar_label(bars, fontsize=6, padding=1)
        if n_balance is not None:
            ax.axhline(n_balance, color="black", linestyle="--", linewidth=1, label=f"n_balance = {n_balance}")
        ax.set_xticks(x, names, rotation=45 if len(names) > 8 else 0, ha="right" if len(names) > 8 else "center")
        ax.set_ylabel("images containing the class")
        ax.set_title(title + ("\n" + ", ".join(stats) if stats else ""), fontsize=10)
        ax.set_ylim(0, max(after + before + [n_balance or 0]) * 1.1 + 1)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        save_figure(fig, out_png)


# --- Table 2 as bars ----------------------------------------------------------------------------


def per_class_iou_bars(
    class_names: Sequence[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    out_png: str | Path,
    paper: Mapping[str, Sequence[float]] | None = None,
    title: str = "Per-class IoU (%), mean ± std over seeds",
) -> None:
    """Grouped bars: one group per class, one bar per training set with std error bars.

    ``series`` maps a legend label (``D_origin``, ``D_final``) to (means, stds) in class order;
    NaN means no bar. ``paper`` maps the same labels to the paper's values, drawn as
    diamonds (black edge, the series' colour) at the matching bars (legend "... (paper)").
    """
    if not series:
        raise SegaugError("IoU bars: no series given")
    n = len(series)
    width = 0.8 / n
    x = np.arange(len(class_names))
    with _style():
        fig = _new_figure(max(6.0, 0.5 * len(class_names) * max(n, 2) / 2 + 2), 4.4)
        ax = fig.subplots()
        for k, (label, (means, stds)) in enumerate(series.items()):
            if not (len(means) == len(stds) == len(class_names)):
                raise SegaugError(f"IoU bars: series {label!r} does not have one value per class")
            pos = x + (k - (n - 1) / 2) * width
            color = COLORS[k % len(COLORS)]
            means_a = np.asarray(means, dtype=float)
            stds_a = np.nan_to_num(np.asarray(stds, dtype=float))
            ax.bar(
                pos,
                np.nan_to_num(means_a),
                width,
                yerr=np.where(np.isfinite(means_a), stds_a, 0.0),
                capsize=2,
                color=color,
                label=f"{label} (mean ± std)",
                error_kw={"elinewidth": 0.8},
            )
        for k, label in enumerate(series):  # after the bars: on top of them, and last in the legend
            if paper and label in paper:
                ax.plot(
                    x + (k - (n - 1) / 2) * width,
                    np.asarray(paper[label], dtype=float),
                    linestyle="none",
                    marker="D",
                    markersize=4,
                    markerfacecolor=COLORS[k % len(COLORS)],
                    markeredgecolor="black",
                    markeredgewidth=0.8,
                    label=f"{label} (paper)",
                )
        ax.set_xticks(
            x, class_names, rotation=45 if len(class_names) > 8 else 0, ha="right" if len(class_names) > 8 else "center"
        )
        ax.set_ylabel("IoU (%)")
        ax.set_ylim(0, 100)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        save_figure(fig, out_png)
