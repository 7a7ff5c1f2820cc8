#!/usr/bin/env python
"""Helper of bench_paste_job.py: the original SIGtor (github.com/solufast/SIGtor,
synthetic_image_generator.py) in its fast configuration -- "SP" simple (soft-mask) paste, the
only clone choice that version enables, with the histogram/colour-balance post-processing
switched off -- generating N images from a source annotation file. Prints JSON
{"cpu_s", "wall_s", "images"} (the generation loop only, imports excluded).

    python benchmarks/_sigtor_fast.py SIGTOR_CHECKOUT ANN_FILE MASK_DIR OUT_DIR N [--post]
"""

import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    for a in ("sigtor", "ann", "masks", "out"):
        ap.add_argument(a)
    ap.add_argument("n", type=int)
    ap.add_argument("--post", action="store_true", help="keep SIGtor's post-processing")
    args = ap.parse_args()
    sys.path.insert(0, args.sigtor)
    os.environ.setdefault("TQDM_DISABLE", "1")
    import cv2
    import numpy as np
    from PIL import Image

    cv2.setNumThreads(1)
    # compatibility with today's Pillow (SIGtor pins Pillow 9.4): crop boxes as plain tuples
    crop = Image.Image.crop
    Image.Image.crop = lambda self, box=None: crop(self, None if box is None else tuple(int(v) for v in box))
    import synthetic_image_generator as sig

    if not args.post:
        sig.post_processing = lambda image: Image.fromarray(np.asarray(image))
    np.random.seed(0)
    import random

    random.seed(0)
    ns = argparse.Namespace(
        source_ann_file=args.ann,
        destn_dir=args.out,
        mask_image_dirs=args.masks,
        total_new_imgs=args.n,
        bckgrnd_imgs_dir=os.path.join(args.sigtor, "Datasets", "BackgroundImages"),
    )
    c0, t0 = time.process_time(), time.perf_counter()
    sig.main(ns)
    print(json.dumps({"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0, "images": args.n}))


if __name__ == "__main__":
    main()
