#!/usr/bin/env python
r"""Download a model's pretrained weights into the Hugging Face cache (HF_HOME), ahead of a run.

Compute nodes often have no internet: this runs on the submit host (a Snakemake localrule),
and training jobs then run with HF_HUB_OFFLINE=1 against the same HF_HOME.

    HF_HOME=resources/huggingface python scripts/prefetch_weights.py \
        --model-json '{"arch": "DeepLabV3Plus", "encoder": "resnet50", "encoder_weights": "imagenet"}' \
        --out resources/huggingface/.segaug/deeplabv3plus_r50.ready

The same for a Mask2Former model with ``backbone_weights: imagenet``: building it loads
``microsoft/resnet-50`` (``-101``) through transformers, which downloads it into HF_HOME.
A ``backend: mmseg`` model (run in envs/mmseg.yaml) downloads its config's backbone checkpoint
(open-mmlab://resnet50_v1c, torchvision://resnet50) into TORCH_HOME's hub cache instead.
"""

import argparse
import json
import logging
import os
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.io import write_text
from segaug.train.models import create_model

log = logging.getLogger("prefetch_weights")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-json", required=True, type=json_arg, help="model config (inline or @file)")
    ap.add_argument("--out", required=True, type=Path, help="marker written once the weights are cached")
    args = ap.parse_args(argv)
    create_model(args.model_json, num_classes=2)  # fetches the encoder/backbone weights into HF_HOME
    cfg = args.model_json
    log.info(
        "weights of %s cached in %s",
        cfg.get("encoder") or cfg.get("backbone") or cfg.get("config") or cfg.get("arch"),
        os.environ.get("TORCH_HOME") if cfg.get("backend") == "mmseg" else os.environ.get("HF_HOME"),
    )
    write_text(args.out, json.dumps(args.model_json, sort_keys=True) + "\n")


if __name__ == "__main__":
    run(main)
