#!/usr/bin/env python
r"""The paper's figures and Table 2, each optionally with a provenance sidecar.

    # Figure 5: val mIoU over training steps, D_origin vs D_final (mean, min-max band, best step)
    python scripts/figures.py figure5 \
        --curve D_origin results/voc2007/voc7/train/deeplabv3plus_r50/origin/ce/seed*/curve.csv \
        --curve D_final results/voc2007/voc7/train/deeplabv3plus_r50/gen-default/ce/seed*/curve.csv \
        --out results/figures/figure5.png

    # synthetic samples: image / image prior / label prior / blended prior / generated + prompt
    python scripts/figures.py samples --set results/voc2007/voc7/gen/default/seed0/set \
        --priors results/voc2007/voc7/gen/priors/lineart --dataset-root results/voc2007/dataset \
        --n 4 --out results/figures/samples.png

    # images per class before / after balancing (Algorithm 1), from a plan
    python scripts/figures.py histogram --plan results/voc2007/voc7/gen/plans/balance-auto.json \
        --out results/figures/class_histogram.png

    # Table 2: per-class IoU of one model on one split, D_origin vs D_final (+ bars)
    python scripts/figures.py table2 --metrics results/voc2007/voc7/eval/*/*/ce/seed*/metrics.json \
        --model deeplabv3plus_r50 --split voc7 --d-final gen-default \
        --out-csv t2.csv --out-md t2.md --out-tex t2.tex --out-bars t2.png

Every subcommand takes --provenance-json '{"config": {...}, "seeds": [0, 1, 2],
"model_ids": {...}, "extra": {...}}' (inline or @file.json); with it, each output gets a sidecar
OUTPUT.provenance.json (see segaug.report.provenance) listing also the input files and their
SHA-256.
"""

import argparse
import logging
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.errors import SegaugError

log = logging.getLogger("figures")


# --- provenance -------------------------------------------------------------------------------


def _check_provenance(value):
    from segaug.report.provenance import check_spec

    return check_spec(value)


def _sidecars(args, outputs, inputs):
    """Write a provenance sidecar beside every output when --provenance-json was given."""
    from segaug.report.provenance import write_sidecars

    write_sidecars(args.provenance_json, outputs, inputs, what=f"scripts/figures.py {args.command}")


# --- subcommands ------------------------------------------------------------------------------


def cmd_figure5(args):
    from segaug.report.figures import figure5

    curves = {}
    for item in args.curve:
        label, files = item[0], item[1:]
        if not files:
            raise SegaugError(f"--curve {label}: give the label, then its curve.csv files")
        if label in curves:
            raise SegaugError(f"--curve {label}: label given twice")
        curves[label] = files
    best = figure5(curves, args.out, title=args.title)
    for label, (step, value) in best.items():
        log.info("%s: best mean val mIoU %.2f at step %d", label, value, step)
    _sidecars(args, [args.out], [f for files in curves.values() for f in files])


def _sample_rows(set_dir: Path, priors: Path | None, dataset_root: Path, n: int):
    from segaug.data.canonical import image_path
    from segaug.io import read_jsonl

    entries = read_jsonl(set_dir / "manifest.jsonl", "synthetic set manifest")[:n]
    if not entries:
        raise SegaugError(f"{set_dir}: the synthetic set's manifest is empty")
    rows, files = [], []
    for m in entries:
        src, oid = m["source_id"], m["output_id"]
        blended = set_dir / "priors" / f"{oid}.png"
        row = {
            "image": image_path(dataset_root, src),
            "image_prior": priors / "image" / f"{src}.png" if priors else None,
            "label_prior": priors / "label" / f"{src}.png" if priors else None,
            "blended_prior": blended if blended.exists() else None,
            "generated": image_path(set_dir, oid),
            "prompt": m.get("prompt", ""),
            "title": oid + (f"\n(class {m['balanced_class']})" if m.get("balanced_class") else ""),
        }
        for key in ("image_prior", "label_prior"):
            if row[key] is not None and not row[key].exists():
                raise SegaugError(f"{row[key]}: prior missing; is --priors the priors directory of this split?")
        rows.append(row)
        files += [v for k, v in row.items() if isinstance(v, Path)]
    return rows, files


def cmd_samples(args):
    from segaug.report.figures import sample_grid

    if args.n < 1:
        raise SegaugError("--n must be >= 1")
    rows, files = _sample_rows(args.set, args.priors, args.dataset_root, args.n)
    sample_grid(rows, args.out, wrap=args.wrap)
    _sidecars(args, [args.out], [args.set / "manifest.jsonl", *files])


def cmd_histogram(args):
    from segaug.io import read_json
    from segaug.report.figures import class_histogram

    plan = read_json(args.plan)
    need = ("class_names", "images_per_class_origin", "images_per_class_final")
    if any(k not in plan for k in need):
        raise SegaugError(f"{args.plan}: not a generation plan (needs {', '.join(need)}); rebuild it")
    exclude = plan.get("exclude", []) if args.exclude is None else args.exclude
    unknown = [c for c in exclude if c not in plan["class_names"]]
    if unknown:
        raise SegaugError(f"--exclude: unknown class(es) {unknown}; known: {', '.join(plan['class_names'])}")
    pair = lambda a, b: (plan[a], plan[b]) if a in plan and b in plan else None
    class_histogram(
        plan["class_names"],
        plan["images_per_class_origin"],
        plan["images_per_class_final"],
        args.out,
        exclude=exclude,
        entropy=pair("entropy_origin", "entropy_final"),
        cir=pair("cir_origin", "cir_final"),
        n_balance=plan.get("n_balance"),
        num_images=(plan["num_origin"], plan["num_origin"] + plan["num_generated"])
        if "num_origin" in plan and "num_generated" in plan
        else None,
        title=args.title or f"Images per class before and after balancing ({plan.get('plan', Path(args.plan).stem)})",
    )
    _sidecars(args, [args.out], [args.plan])


def cmd_table2(args):
    from segaug.io import write_text
    from segaug.report.figures import per_class_iou_bars
    from segaug.report.latex import to_latex
    from segaug.report.table2 import iou_series, load_class_runs, seeds_of, select_runs, table2_rows, title
    from segaug.report.tables import write_table

    outputs = [p for p in (args.out_csv, args.out_md, args.out_tex, args.out_bars) if p]
    if not outputs:
        raise SegaugError("nothing to write: give --out-csv, --out-md, --out-tex and/or --out-bars")
    runs = load_class_runs(args.metrics)
    loss = None if args.loss == "any" else args.loss
    rows = table2_rows(runs, args.d_final, args.model, args.split, loss)
    pool, model, split = select_runs(runs, args.model, args.split, loss)
    caption = title(model, split, args.d_final, seeds_of(pool, "origin"), seeds_of(pool, args.d_final))
    write_table(rows, args.out_csv, args.out_md, title=caption)
    if args.out_tex:
        write_text(args.out_tex, to_latex(rows, caption=caption, label=args.label))
    if args.out_bars:
        names, series, paper = iou_series(rows)
        per_class_iou_bars(
            names,
            series,
            args.out_bars,
            paper=paper,
            title=f"Per-class IoU (%) of {model} on {split}, mean ± std over seeds",
        )
    miou = rows[-1]
    log.info(
        "Table 2 (%s, %s): mIoU %s -> %s (%s)", model, split, miou["origin_mean"], miou["final_mean"], args.d_final
    )
    _sidecars(args, outputs, [r["path"] for r in pool if r["trainset"] in ("origin", args.d_final)])


# --- argument parsing -------------------------------------------------------------------------


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    def add(name, func, help):
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument(
            "--provenance-json",
            type=json_arg,
            default=None,
            help='JSON {"config", "seeds", "model_ids", "extra"} (inline or @file): write OUT.provenance.json',
        )
        p.set_defaults(func=func)
        return p

    p = add("figure5", cmd_figure5, "Figure 5: val mIoU (%) over training steps, mean and min-max band over seeds")
    p.add_argument(
        "--curve",
        action="append",
        nargs="+",
        required=True,
        metavar="LABEL CSV",
        help="a legend label then the curve.csv files of its seeds; repeat per training set",
    )
    p.add_argument("--title", default="Figure 5: validation mIoU during training")
    p.add_argument("--out", required=True, type=Path, help="PNG (or .svg/.pdf)")

    p = add("samples", cmd_samples, "image / image prior / label prior / blended prior / generated, with prompts")
    p.add_argument("--set", required=True, type=Path, help="synthetic set directory (manifest.jsonl, images/, priors/)")
    p.add_argument("--priors", type=Path, help="the split's priors directory (image/, label/); omit for prior none")
    p.add_argument("--dataset-root", required=True, type=Path, help="the real dataset (images/)")
    p.add_argument("--n", type=int, default=4, help="the first N manifest entries (default 4)")
    p.add_argument("--wrap", type=int, help="wrap prompts at this many characters (default: the figure width)")
    p.add_argument("--out", required=True, type=Path)

    p = add("histogram", cmd_histogram, "images per class before / after class balancing (Algorithm 1)")
    p.add_argument("--plan", required=True, type=Path, help="plan JSON (scripts/plan.py)")
    p.add_argument("--exclude", nargs="*", default=None, help="classes left out (default: the plan's exclude)")
    p.add_argument("--title")
    p.add_argument("--out", required=True, type=Path)

    p = add("table2", cmd_table2, "Table 2: per-class IoU (%) of one model on one split, D_origin vs D_final")
    p.add_argument("--metrics", required=True, nargs="+", help="metrics.json files")
    p.add_argument("--d-final", default="gen-default", help="training set that plays D_final")
    p.add_argument("--model", help="model name (needed when the metrics hold several)")
    p.add_argument("--split", help="split name (needed when the metrics hold several)")
    p.add_argument("--loss", default="ce", help="loss of the runs to use, or 'any' (default ce)")
    p.add_argument("--label", default="tab:table2", help="LaTeX label")
    p.add_argument("--out-csv")
    p.add_argument("--out-md")
    p.add_argument("--out-tex")
    p.add_argument("--out-bars", help="per-class IoU bars (PNG)")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    _check_provenance(args.provenance_json)  # a bad --provenance-json fails before anything is written
    args.func(args)


if __name__ == "__main__":
    run(main)
