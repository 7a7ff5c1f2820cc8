#!/usr/bin/env python
"""Helper of bench_train_data.py, run with the MMSegmentation reference venv's python:
MMSeg 1.2.2's own PASCAL VOC train pipeline over the given files, one core; prints JSON
{"cpu_s", "wall_s", "images"} (the loop only, imports excluded).

    /work/venv-mmseg/bin/python benchmarks/_mmseg_voc_pipeline.py ROOT IDS_FILE [--passes 1]

mmcv-lite has no compiled ops; mmseg imports ``mmcv.ops`` at module level in a few files, so a
stand-in ``mmcv._ext`` is registered first (the VOC transforms use no compiled op).
"""

import argparse
import json
import os
import sys
import time
import types

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _stub_mmcv_ext():
    class _Ext(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)

            def op(*a, **k):
                raise RuntimeError(f"mmcv._ext.{name}: compiled op not available (stub)")

            return op

    sys.modules["mmcv._ext"] = _Ext("mmcv._ext")
    import mmcv.utils.ext_loader as ext_loader

    ext_loader.load_ext = lambda name, funcs: types.SimpleNamespace(
        **{f: getattr(sys.modules["mmcv._ext"], f) for f in funcs}
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("ids")
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    _stub_mmcv_ext()
    import cv2
    import mmseg.datasets.transforms  # noqa: F401  (registers the transforms)
    import numpy as np
    import torch
    from mmcv.transforms import Compose
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    pipeline = Compose(
        [  # configs/_base_/datasets/pascal_voc12.py, train_pipeline
            dict(type="LoadImageFromFile"),
            dict(type="LoadAnnotations"),
            dict(type="RandomResize", scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
            dict(type="RandomCrop", crop_size=(512, 512), cat_max_ratio=0.75),
            dict(type="RandomFlip", prob=0.5),
            dict(type="PhotoMetricDistortion"),
            dict(type="PackSegInputs"),
        ]
    )
    ids = [i for i in open(args.ids).read().split() if i]
    np.random.seed(args.seed)
    import random

    random.seed(args.seed)
    items = [
        dict(
            img_path=f"{args.root}/images/{i}.jpg",
            seg_map_path=f"{args.root}/labels/{i}.png",
            reduce_zero_label=False,
            seg_fields=[],
        )
        for i in ids
    ]
    pipeline(dict(items[0]))  # warm-up
    c0, t0 = time.process_time(), time.perf_counter()
    n = 0
    for _ in range(args.passes):
        for it in items:
            out = pipeline(dict(it))
            assert out["inputs"].dtype == torch.uint8
            n += 1
    print(json.dumps({"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0, "images": n}))


if __name__ == "__main__":
    main()
