#!/usr/bin/env python
"""Dataset conversion with verification, and how fast a user sees a defect.

1. Throughput: a VOC-layout dataset of VOC-sized images (500x375 JPEG q90, colour-coded
   masks as CVAT exports them, plus palette masks as PASCAL VOC ships them) converted to the
   canonical layout with every file checked (full decode, label colours/values, sizes), with
   1 and 2 threads; beside it the floor a user could not go below: copying the same files with
   shutil (no decode, no check), and a bare PIL decode loop.
2. Time to the first error: the real workflow (snakemake CLI) on a small export with one
   defect each; seconds from the start of snakemake to the first `error:` line on its console.

    python benchmarks/bench_convert.py [--images 300] [--no-workflow]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from own_data import NAMES, PALETTE, make_voc_export  # noqa: E402
from segaug.data.canonical import ClassTable  # noqa: E402
from segaug.data.voc import convert_voc  # noqa: E402


def voc_sized_export(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    (root / "labelmap.txt").write_text("".join(f"{n}:{r},{g},{b}::\n" for n, (r, g, b) in zip(NAMES, PALETTE)))
    lut = np.array(PALETTE + ((224, 224, 192),), np.uint8)
    for k in range(n):
        h, w = (375, 500) if k % 3 else (500, 375)
        lab = np.zeros((h, w), np.uint8)
        lab[h // 2 :] = 1
        lab[: h // 3, : w // 3] = 2
        y, x = int(rng.integers(h // 2, h - 40)), int(rng.integers(0, w - 60))
        lab[y - 1 : y + 31, x - 1 : x + 51] = 6  # void border (index 6 of lut = the void colour)
        lab[y : y + 30, x : x + 50] = 4
        img = np.clip(lut[lab].astype(np.int16) + rng.integers(-30, 30, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"JPEGImages/{k:06d}.jpg", quality=90)
        if k % 2:  # colour-coded, as CVAT exports
            Image.fromarray(lut[lab]).save(root / f"SegmentationClass/{k:06d}.png")
        else:  # palette-indexed, as PASCAL VOC ships
            idx = np.where(lab == 6, 255, lab).astype(np.uint8)
            im = Image.fromarray(idx, mode="P")
            im.putpalette([v for c in PALETTE for v in c] + [224, 224, 192] * 250)
            im.save(root / f"SegmentationClass/{k:06d}.png")
    (root / "ImageSets/Segmentation/default.txt").write_text("".join(f"{k:06d}\n" for k in range(n)))


def throughput(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_convert."))
    try:
        src = tmp / "export"
        voc_sized_export(src, n)
        table = ClassTable(NAMES, PALETTE)
        ids = [f"{k:06d}" for k in range(n)]
        rows = []
        t = time.perf_counter()
        (tmp / "copy").mkdir()
        for i in ids:
            shutil.copyfile(src / f"JPEGImages/{i}.jpg", tmp / f"copy/{i}.jpg")
            shutil.copyfile(src / f"SegmentationClass/{i}.png", tmp / f"copy/{i}.png")
        rows.append(("shutil copy of image + label (no decode, no check)", time.perf_counter() - t, 1))
        t = time.perf_counter()
        for i in ids:
            for f in (src / f"JPEGImages/{i}.jpg", src / f"SegmentationClass/{i}.png"):
                with Image.open(f) as im:
                    im.load()
        rows.append(("bare PIL decode of image + label (no check, no write)", time.perf_counter() - t, 1))
        for workers in (1, 2):
            out = tmp / f"out{workers}"
            t = time.perf_counter()
            convert_voc(src, out, table=table, pascal=False, workers=workers)
            rows.append((f"convert_voc, every file verified, {workers} thread(s)", time.perf_counter() - t, workers))
        print(f"conversion of {n} VOC-sized images (500x375), {os.cpu_count()} CPUs here")
        base = rows[0][1]
        for what, s, _ in rows:
            print(f"  {what:58s} {n / s:7.1f} images/s  ({s / base:4.1f}x the copy's time)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def defect_truncated(root):
    p = root / "JPEGImages/frame_0002.jpg"
    p.write_bytes(p.read_bytes()[:300])


def defect_value(root):
    p = root / "SegmentationClass/frame_0000.png"
    im = Image.open(p)
    arr = np.asarray(im).copy()
    arr[0, 0] = 9
    out = Image.fromarray(arr, mode="P")
    out.putpalette(im.getpalette())
    out.save(p)


def defect_colour(root):
    p = root / "SegmentationClass/frame_0001.png"
    arr = np.asarray(Image.open(p)).copy()
    arr[0, 0] = (255, 0, 255)
    Image.fromarray(arr).save(p)


def defect_traversal(root):
    with open(root / "ImageSets/Segmentation/train.txt", "a") as f:
        f.write("../../etc/passwd\n")


def defect_size(root):
    p = root / "SegmentationClass/frame_0003.png"
    Image.open(p).crop((0, 0, 20, 20)).save(p)


def defect_class(root):
    return {"pool": {"classes": ["car", "baot"]}}


DEFECTS = {
    "truncated JPEG": defect_truncated,
    "label value 9 (6 classes)": defect_value,
    "colour not in the palette": defect_colour,
    "../../etc/passwd in a list": defect_traversal,
    "label/image size mismatch": defect_size,
    "misspelt pool class": defect_class,
}


def first_error_seconds() -> None:
    snakemake = Path(sys.executable).with_name("snakemake")
    print("\nseconds from `snakemake` start to the first `error:` line on the console (show-failed-logs)")
    for name, make in DEFECTS.items():
        tmp = Path(tempfile.mkdtemp(prefix="bench_defect."))
        try:
            make_voc_export(tmp / "exp")
            extra = make(tmp / "exp") or {}
            cfg = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
            cfg["datasets"] = {"mine": {"kind": "voc", "path": str(tmp / "exp")}}
            cfg["splits"] = {"s": {"dataset": "mine", "train": "set:train", "val": "set:val"}}
            cfg["pool"].update({"classes": ["car", "boat"], "min_area": 4, **extra.get("pool", {})})
            cfg["context"]["surfaces"]["names"] = ["road", "building"]
            cfg["context"]["rules"]["boat"]["surfaces"] = ["building"]
            cfg["table1"]["splits"], cfg["ablations"]["split"], cfg["thesis"]["split"] = ["s"], "s", "s"
            (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
            cmd = [
                str(snakemake),
                "-s",
                str(ROOT / "Snakefile"),
                "--directory",
                str(tmp),
                "results/demo/mine/s/pool",
                "--cores",
                "1",
                "--show-failed-logs",
                "--configfile",
                str(tmp / "cfg.yaml"),
            ]
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
            t = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            seen, line_out = None, ""
            for line in p.stdout:
                if seen is None and ("error:" in line or "unknown class" in line):
                    seen, line_out = time.perf_counter() - t, line.strip()
            p.wait()
            print(f"  {name:28s} {seen if seen is not None else float('nan'):5.1f} s  {line_out[:150]}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--no-workflow", action="store_true", help="skip the time-to-first-error runs")
    a = ap.parse_args()
    throughput(a.images)
    if not a.no_workflow:
        first_error_seconds()
