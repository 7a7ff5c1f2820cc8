#!/usr/bin/env python
r"""Train a segmentation model (MMSegmentation VOC recipe on smp + Lightning); resumable.

A model config with ``"backend": "mmseg"`` is trained by MMSegmentation itself (mmengine's
Runner, segaug.train.mmseg_backend; run this in envs/mmseg.yaml) with the same outputs.

    python scripts/train.py --dataset-root results/voc7/data --train-list train.txt \
        --extra-set results/voc7/paste/random/seed0:results/voc7/paste/random/seed0/ids.txt \
        --val-list val.txt --model-json '{"arch": "DeepLabV3Plus", "encoder": "resnet50"}' \
        --train-json @train.json --loss-json '{"name": "ce"}' --seed 0 \
        --run-json '{"model": "deeplabv3plus_r50", "split": "voc7", ...}' \
        --out-model model.pt --out-curve curve.csv --state-dir state/

The class table is DATASET_ROOT/classes.json; every --extra-set ROOT must use the same
classes. If STATE_DIR/last.ckpt exists (an interrupted run) training resumes from it.
JSON arguments are inline JSON or @file.json.
"""

import argparse
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.data.canonical import ClassTable, read_split, samples
from segaug.errors import SegaugError


def extra_set(value: str):
    root, sep, listfile = value.partition(":")
    if not sep or not root or not listfile:
        raise argparse.ArgumentTypeError(f"--extra-set wants ROOT:LISTFILE, got {value!r}")
    return Path(root), Path(listfile)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path, help="canonical dataset")
    ap.add_argument("--train-list", required=True, type=Path, help="ids of training images")
    ap.add_argument(
        "--extra-set",
        action="append",
        default=[],
        type=extra_set,
        metavar="ROOT:LISTFILE",
        help="another canonical dataset and its id list, added to training (repeatable)",
    )
    ap.add_argument("--val-list", required=True, type=Path, help="ids of validation images")
    ap.add_argument("--model-json", required=True, type=json_arg, help="model config")
    ap.add_argument("--train-json", required=True, type=json_arg, help="training config")
    ap.add_argument("--loss-json", default={"name": "ce"}, type=json_arg, help="loss config")
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--run-json", default={}, type=json_arg, help="run description stored in the model")
    ap.add_argument("--out-model", required=True, type=Path)
    ap.add_argument("--out-curve", required=True, type=Path)
    ap.add_argument("--state-dir", required=True, type=Path, help="checkpoints for resuming")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, help="CPU threads for torch (the rule's threads)")
    ap.add_argument(
        "--logger",
        default="tensorboard",
        choices=["tensorboard", "wandb", "none"],
        help="run tracking: TensorBoard event files in OUT_CURVE's directory /tb (wandb: also a W&B run)",
    )
    args = ap.parse_args(argv)
    if args.threads:
        args.train_json["threads"] = args.threads

    table = ClassTable.load(args.dataset_root / "classes.json")
    train = samples(args.dataset_root, read_split(args.train_list))
    for root, listfile in args.extra_set:
        if (root / "classes.json").exists():
            other = ClassTable.load(root / "classes.json")
            if other.names != table.names:
                raise SegaugError(f"{root / 'classes.json'}: classes differ from {args.dataset_root / 'classes.json'}")
        train += samples(root, read_split(listfile))
    val = samples(args.dataset_root, read_split(args.val_list))

    from segaug.train.loop import train as train_model

    train_model(
        train,
        val,
        table,
        args.model_json,
        args.train_json,
        args.loss_json,
        args.seed,
        args.out_model,
        args.out_curve,
        args.state_dir,
        device=args.device,
        run_info=args.run_json,
        logger=args.logger,
    )


if __name__ == "__main__":
    run(main)
