#!/usr/bin/env python
r"""Evaluate a trained model on a split: metrics.json (scores + the run) and confusion.csv.

    python scripts/evaluate.py --dataset-root results/voc7/data --val-list val.txt \
        --model model.pt --out-metrics metrics.json --out-confusion confusion.csv

metrics.json holds miou, pixel_acc, mean_acc, per-class iou/precision/recall/f1/support
(fractions; null where undefined, see segaug.metrics) and the model's "run" dict, so tables
can be built from metrics files alone.
"""

import argparse
from pathlib import Path

from segaug.cli import run
from segaug.data.canonical import ClassTable, read_split, samples
from segaug.io import write_json, write_text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--val-list", required=True, type=Path)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--out-metrics", required=True, type=Path)
    ap.add_argument("--out-confusion", required=True, type=Path)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, help="CPU threads for torch (the rule's threads)")
    ap.add_argument(
        "--batch-size", type=int, default=None, help="images of one size per batch (default: 8 on a GPU, 1 on a CPU)"
    )
    ap.add_argument("--num-workers", type=int, default=0, help="data loader worker processes")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from segaug.metrics import confusion_csv, jsonable
    from segaug.train.evaluate import evaluate, read_model_file

    table = ClassTable.load(args.dataset_root / "classes.json")
    val = samples(args.dataset_root, read_split(args.val_list))
    meta = read_model_file(args.model)  # read once: evaluate() builds the model from it
    conf, sc = evaluate(
        args.model, val, table, device=args.device, meta=meta, batch_size=args.batch_size, num_workers=args.num_workers
    )
    meta.pop("state_dict")
    metrics = {
        **sc,
        "run": meta.get("run", {}),
        "model": {
            "path": str(args.model),
            "steps": meta.get("steps"),
            "best": meta.get("best"),
            "model_cfg": meta.get("model_cfg"),
            "seed": meta.get("seed"),
        },
        "num_images": len(val),
        "val_list": str(args.val_list),
    }
    write_json(args.out_metrics, jsonable(metrics))
    write_text(args.out_confusion, confusion_csv(conf, table.names))


if __name__ == "__main__":
    run(main)
