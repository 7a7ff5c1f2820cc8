#!/usr/bin/env python
r"""Download a Hugging Face repo (or the FID Inception weights) ahead of a run.

    HF_HOME=resources/huggingface python scripts/prefetch_hub.py --repo TencentARC/t2i-adapter-lineart-sdxl-1.0 \
        --out resources/huggingface/.segaug/hub/TencentARC--t2i-adapter-lineart-sdxl-1.0.ready
    TORCH_HOME=resources/huggingface/torch python scripts/prefetch_hub.py --inception --out ...

A localrule of the workflow (`snakemake prefetch`): the submit host has internet, the GPU jobs
then run with HF_HUB_OFFLINE=1 against the same HF_HOME. Only the files from_pretrained loads
are fetched: PyTorch safetensors and configs (no Flax/ONNX/OpenVINO copies, no single-file
checkpoints); for lllyasviel/Annotators only the line-art and PiDiNet weights.
"""

import argparse
import json
import logging
import os
from pathlib import Path

from segaug.cli import run
from segaug.errors import SegaugError
from segaug.io import write_text

log = logging.getLogger("prefetch_hub")

ANNOTATOR_FILES = ["sk_model.pth", "sk_model2.pth", "table5_pidinet.pth"]
ALLOW = ["*.json", "*.txt", "*.model", "*.safetensors", "*.safetensors.index.json"]
SKIP = ["*flax*", "*onnx*", "*openvino*", "*.msgpack", "*.h5", "sd_xl_*.safetensors", "*.ckpt"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--repo", help="Hugging Face repo id, owner/name")
    what.add_argument("--inception", action="store_true", help="the FID Inception weights")
    ap.add_argument("--out", required=True, type=Path, help="marker written when done")
    args = ap.parse_args(argv)
    if args.inception:
        from segaug.generative.clip import prefetch_inception

        where = prefetch_inception()
        write_text(args.out, json.dumps({"inception": str(where)}) + "\n")
        return
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise SegaugError("prefetch runs with HF_HUB_OFFLINE=1: unset it on the machine with internet")
    from huggingface_hub import snapshot_download

    kwargs = (
        {"allow_patterns": ANNOTATOR_FILES}
        if args.repo == "lllyasviel/Annotators"
        else {"allow_patterns": ALLOW, "ignore_patterns": SKIP}
    )
    try:
        path = snapshot_download(args.repo, **kwargs)
    except Exception as e:
        raise SegaugError(f"cannot download {args.repo!r} from the Hugging Face hub: {e}") from None
    log.info("%s cached at %s", args.repo, path)
    write_text(args.out, json.dumps({"repo": args.repo, "path": path}) + "\n")


if __name__ == "__main__":
    run(main)
