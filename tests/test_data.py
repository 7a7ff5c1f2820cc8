"""Canonical layout IO, VOC conversion, U2PL lists, the demo generator."""

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from segaug.data.canonical import (
    ClassTable, Sample, check_label_values, load_pair, read_image, read_label, read_split,
    voc_class_table, write_label, write_split,
)  # fmt: skip
from segaug.data.demo import CAR, BOAT, generate_demo
from segaug.data.voc import convert_voc, find_voc_year_dir, official_sets
from segaug.errors import SegaugError


def palette_png(label: np.ndarray) -> bytes:
    im = Image.fromarray(label, mode="P")
    im.putpalette([v for c in voc_class_table().palette for v in c] + [224, 224, 192] * 235)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def jpeg(h, w, seed) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def voc_files(year="2007", train=("000032", "000039"), val=("000063",)):
    """{tar member name: bytes} of a tiny VOC devkit with palette labels and a void border."""
    base = f"VOCdevkit/VOC{year}"
    files = {
        f"{base}/ImageSets/Segmentation/train.txt": "".join(i + "\n" for i in train).encode(),
        f"{base}/ImageSets/Segmentation/val.txt": "".join(i + "\n" for i in val).encode(),
        f"{base}/JPEGImages/009999.jpg": jpeg(8, 8, 9),  # not in any segmentation list
    }
    for k, i in enumerate(train + val):
        label = np.zeros((24, 32), np.uint8)
        label[5:15, 8:20] = 7 + k
        label[4, 8:20] = 255
        files[f"{base}/JPEGImages/{i}.jpg"] = jpeg(24, 32, k)
        files[f"{base}/SegmentationClass/{i}.png"] = palette_png(label)
    return files


def write_tree(root, files):
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def make_tar(path, files):
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# ------------------------------------------------------------------ canonical layout


def test_class_table_roundtrip_and_unknown_class(tmp_path):
    t = ClassTable(("a", "b"), ((0, 0, 0), (255, 0, 0)))
    t.save(tmp_path / "classes.json")
    t2 = ClassTable.load(tmp_path / "classes.json")
    assert t2 == t and t2.index("b") == 1
    with pytest.raises(SegaugError, match="unknown class 'c'; known classes: a, b"):
        t2.index("c")
    with pytest.raises(SegaugError, match="2 names but 1 palette"):
        ClassTable(("a", "b"), ((0, 0, 0),))


def test_label_roundtrip_keeps_indices_and_ignore(tmp_path):
    lab = np.array([[0, 1, 255], [2, 2, 0]], np.uint8)
    write_label(tmp_path / "l.png", lab)
    with Image.open(tmp_path / "l.png") as im:
        assert im.mode == "L"
    assert np.array_equal(read_label(tmp_path / "l.png", 3), lab)


def test_palette_label_reads_indices(tmp_path):
    lab = np.array([[0, 15, 255]], np.uint8)
    (tmp_path / "p.png").write_bytes(palette_png(lab))
    assert np.array_equal(read_label(tmp_path / "p.png", 21), lab)


def test_rgb_label_is_rejected(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(SegaugError, match="rgb.png: label must be a single-channel"):
        read_label(tmp_path / "rgb.png")


def test_corrupt_image_names_the_file(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(SegaugError, match="bad.jpg: cannot read image"):
        read_image(tmp_path / "bad.jpg")


def test_label_values_outside_table():
    with pytest.raises(SegaugError, match=r"x.png: label values \[7\] are outside"):
        check_label_values(np.array([[0, 7, 255]], np.uint8), 3, "x.png")


def test_size_mismatch_names_both_files(tmp_path):
    Image.new("RGB", (8, 6)).save(tmp_path / "i.png")
    write_label(tmp_path / "l.png", np.zeros((5, 8), np.uint8))
    with pytest.raises(SegaugError, match="l.png: label size 8x5 does not match image .*i.png size 8x6"):
        load_pair(Sample("i", tmp_path / "i.png", tmp_path / "l.png"))


def test_split_lists(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(SegaugError, match="empty.txt: split list is empty"):
        read_split(tmp_path / "empty.txt")
    (tmp_path / "dup.txt").write_text("a\nb\na")
    with pytest.raises(SegaugError, match="duplicate ids"):
        read_split(tmp_path / "dup.txt")
    write_split(tmp_path / "s.txt", ["x", "y"])
    assert read_split(tmp_path / "s.txt") == ["x", "y"]
    (tmp_path / "cols.txt").write_text("2007_000032 1\n2007_000039 0")  # no final newline
    assert read_split(tmp_path / "cols.txt") == ["2007_000032", "2007_000039"]


# ------------------------------------------------------------------ VOC


def test_convert_voc_from_devkit_on_disk(tmp_path):
    write_tree(tmp_path / "src", voc_files())
    year_dir = find_voc_year_dir(tmp_path / "src", "2007")
    assert official_sets(year_dir) == {"train": ["000032", "000039"], "val": ["000063"]}
    convert_voc(year_dir, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "images").iterdir()) == ["000032.jpg", "000039.jpg", "000063.jpg"]
    assert (out / "images/000032.jpg").read_bytes() == (year_dir / "JPEGImages/000032.jpg").read_bytes()
    lab = read_label(out / "labels/000039.png", 21)
    assert set(np.unique(lab)) == {0, 8, 255}
    assert read_split(out / "sets/train.txt") == ["000032", "000039"]
    assert ClassTable.load(out / "classes.json").names[15] == "person"


def test_convert_voc_bad_label_value_names_the_file(tmp_path):
    files = voc_files()
    files["VOCdevkit/VOC2007/SegmentationClass/000063.png"] = palette_png(np.full((24, 32), 40, np.uint8))
    write_tree(tmp_path / "src", files)
    with pytest.raises(SegaugError, match=r"000063.png: label values \[40\]"):
        convert_voc(find_voc_year_dir(tmp_path / "src", "2007"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_prepare_from_tar_then_split_with_u2pl_list(tmp_path, shared_data):
    tar = make_tar(tmp_path / "voc.tar", voc_files("2012"))
    py = sys.executable
    p = subprocess.run([py, ROOT / "scripts/prepare_dataset.py", "--kind", "voc", "--year", "2012",
                        "--voc-tar", tar, "--out", tmp_path / "ds"], capture_output=True, text=True)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "ds/images/009999.jpg").exists()  # only segmentation images
    # the real U2PL list parses (92 ids, no final newline) and its ids are checked
    lst = tmp_path / "92-labeled.txt"
    shutil.copy(shared_data / "u2pl-voc12-splits/92-labeled.txt", lst)
    digest = hashlib.sha256(lst.read_bytes()).hexdigest()
    assert digest == "7feeb5314d99485739e79c385d3b70145d44dc60190acb4d5df63165c630ef6a"
    assert len(read_split(lst)) == 92
    args = [py, ROOT / "scripts/make_split.py", "--dataset-root", tmp_path / "ds", "--val-list",
            tmp_path / "ds/sets/val.txt", "--out-train", tmp_path / "t.txt", "--out-val", tmp_path / "v.txt"]  # fmt: skip
    p = subprocess.run(args + ["--train-list", lst], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and "92-labeled.txt: 92 of 92 ids are not in the dataset" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "t.txt").exists()
    p = subprocess.run(args + ["--train-list", tmp_path / "ds/sets/train.txt"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert read_split(tmp_path / "t.txt") == ["000032", "000039"]


def test_u2pl_lists_have_the_paper_sizes(shared_data):
    d = shared_data / "u2pl-voc12-splits"
    sizes = {n: len(read_split(d / f"{n}-labeled.txt")) for n in (92, 183, 366, 732, 1464)}
    assert sizes == {92: 92, 183: 183, 366: 366, 732: 732, 1464: 1464}
    assert len(read_split(d / "val.txt")) == 1449
    assert set(read_split(d / "92-labeled.txt")) <= set(read_split(d / "1464-labeled.txt"))


# ------------------------------------------------------------------ demo generator


def test_demo_is_deterministic_and_imbalanced(tmp_path):
    a = generate_demo(tmp_path / "a", num_train=16, num_val=4, seed=3)
    generate_demo(tmp_path / "b", num_train=16, num_val=4, seed=3)
    generate_demo(tmp_path / "c", num_train=16, num_val=4, seed=4)
    for sub in ("images", "labels"):
        for p in (tmp_path / "a" / sub).iterdir():
            assert p.read_bytes() == (tmp_path / "b" / sub / p.name).read_bytes()
    assert (tmp_path / "a/images/shapes_00000.png").read_bytes() != (tmp_path / "c/images/shapes_00000.png").read_bytes()
    frac = a["train_pixel_fraction"]
    assert 0 < frac["car"] < 0.05 and 0 < frac["boat"] < 0.05
    assert frac["grass"] > 0.3 and frac["road"] > 0.05 and frac["water"] > 0.05
    assert len(read_split(tmp_path / "a/sets/train.txt")) == 16
    table = ClassTable.load(tmp_path / "a/classes.json")
    for i in read_split(tmp_path / "a/sets/val.txt"):
        img, lab = load_pair(Sample(i, tmp_path / f"a/images/{i}.png", tmp_path / f"a/labels/{i}.png"),
                             table.num_classes)  # fmt: skip
        assert img.shape[:2] == lab.shape == (120, 160)


def test_demo_minority_objects_sit_on_their_surface(tmp_path):
    """Cars on road, boats on water: the ignore ring around them borders that surface."""
    generate_demo(tmp_path / "d", num_train=12, num_val=1, seed=0)
    import cv2

    seen = {CAR: 0, BOAT: 0}
    for p in sorted((tmp_path / "d/labels").iterdir()):
        lab = read_label(p)
        for cls, surface in ((CAR, 1), (BOAT, 2)):
            m = (lab == cls).astype(np.uint8)
            if not m.any():
                continue
            seen[cls] += 1
            around = cv2.dilate(m, np.ones((5, 5), np.uint8)).astype(bool) & (lab != cls) & (lab != 255)
            vals, counts = np.unique(lab[around], return_counts=True)
            assert vals[counts.argmax()] == surface, (p.name, cls, vals, counts)
    assert seen[CAR] > 0 and seen[BOAT] > 0
