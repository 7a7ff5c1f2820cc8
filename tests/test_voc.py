"""VOC devkit -> canonical layout, and split lists (incl. the real U2PL lists)."""

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
from segaug.data.canonical import ClassTable, read_label, read_split, voc_class_table
from segaug.data.voc import convert_voc, find_voc_year_dir, official_sets, voc_members
from segaug.errors import SegaugError

U2PL_92_SHA256 = "7feeb5314d99485739e79c385d3b70145d44dc60190acb4d5df63165c630ef6a"


# ------------------------------------------------------------------ fake devkits (also used by test_download)


def palette_png(label: np.ndarray) -> bytes:
    """A VOC-style palette ('P') PNG whose pixel indices are ``label``."""
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


def voc_label(k: int, h=24, w=32) -> np.ndarray:
    """A label with a class-(7 + k) box, a void border above it and background."""
    label = np.zeros((h, w), np.uint8)
    label[5:15, 8:20] = 7 + k
    label[4, 8:20] = 255
    return label


def voc_files(year="2007", train=("000032", "000039"), val=("000063",)):
    """{tar member name: bytes} of a tiny VOC devkit with palette labels and a void border.

    Like the real tarballs: ``VOCdevkit/VOC{year}/...``, a JPEG outside the segmentation
    lists, other ImageSets, list files ending with a newline."""
    base = f"VOCdevkit/VOC{year}"
    files = {
        f"{base}/ImageSets/Segmentation/train.txt": "".join(i + "\n" for i in train).encode(),
        f"{base}/ImageSets/Segmentation/val.txt": "".join(i + "\n" for i in val).encode(),
        f"{base}/ImageSets/Segmentation/trainval.txt": "".join(i + "\n" for i in train + val).encode(),
        f"{base}/ImageSets/Main/train.txt": b"009999\n",
        f"{base}/JPEGImages/009999.jpg": jpeg(8, 8, 9),  # not in any segmentation list
        f"{base}/Annotations/009999.xml": b"<annotation/>",
    }
    for k, i in enumerate(train + val):
        files[f"{base}/JPEGImages/{i}.jpg"] = jpeg(24, 32, k)
        files[f"{base}/SegmentationClass/{i}.png"] = palette_png(voc_label(k))
        files[f"{base}/SegmentationObject/{i}.png"] = palette_png(voc_label(0))
    return files


def write_tree(root, files):
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def make_tar(path, files):
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def run_script(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=120)


def one_error_line(p) -> str:
    """The script failed the user-error way: exit 2, one 'error: ' line, no traceback."""
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, p.stderr
    return errors[0]


@pytest.fixture
def devkit(tmp_path):
    """A VOC2007 devkit extracted on disk; returns the dir holding VOCdevkit."""
    return write_tree(tmp_path / "src", voc_files())


# ------------------------------------------------------------------ finding the devkit


def test_find_voc_year_dir_accepts_three_roots(devkit):
    year_dir = devkit / "VOCdevkit" / "VOC2007"
    assert find_voc_year_dir(devkit, "2007") == year_dir
    assert find_voc_year_dir(devkit / "VOCdevkit", 2007) == year_dir
    assert find_voc_year_dir(year_dir, "2007") == year_dir


def test_find_voc_year_dir_lists_what_it_looked_for(devkit):
    with pytest.raises(SegaugError, match=r"no VOC2012 devkit found; looked for .*VOCdevkit/VOC2012") as e:
        find_voc_year_dir(devkit, "2012")
    assert str(devkit / "VOC2012") in str(e.value)
    with pytest.raises(SegaugError, match="nowhere: VOC devkit directory not found"):
        find_voc_year_dir(devkit / "nowhere", "2007")


def test_official_sets_in_file_order(devkit):
    sets = official_sets(devkit / "VOCdevkit/VOC2007")
    assert sets == {"train": ["000032", "000039"], "val": ["000063"]}
    (devkit / "VOCdevkit/VOC2007/ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(SegaugError, match="val.txt: official split list missing"):
        official_sets(devkit / "VOCdevkit/VOC2007")


# ------------------------------------------------------------------ conversion


def test_convert_voc_writes_the_canonical_layout(devkit, tmp_path):
    year_dir = find_voc_year_dir(devkit, "2007")
    summary = convert_voc(year_dir, tmp_path / "out")
    out = tmp_path / "out"
    assert summary == {"images": 3, "sets": {"train": 2, "val": 1}}
    assert sorted(p.name for p in (out / "images").iterdir()) == ["000032.jpg", "000039.jpg", "000063.jpg"]
    for i in ("000032", "000039", "000063"):  # JPEGs copied byte for byte
        assert (out / f"images/{i}.jpg").read_bytes() == (year_dir / f"JPEGImages/{i}.jpg").read_bytes()
    for k, i in enumerate(("000032", "000039", "000063")):  # indices and void border kept, mode L
        with Image.open(out / f"labels/{i}.png") as im:
            assert im.mode == "L" and im.size == (32, 24)
        assert np.array_equal(read_label(out / f"labels/{i}.png", 21), voc_label(k))
    assert ClassTable.load(out / "classes.json") == voc_class_table()
    assert read_split(out / "sets/train.txt") == ["000032", "000039"]
    assert read_split(out / "sets/val.txt") == ["000063"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temp dir left


def test_convert_voc_keeps_every_class_index_and_255(tmp_path):
    files = voc_files(train=("a",), val=("b",))
    label = np.arange(24 * 32).reshape(24, 32) % 22
    label = np.where(label == 21, 255, label).astype(np.uint8)  # 0..20 and 255
    files["VOCdevkit/VOC2007/SegmentationClass/a.png"] = palette_png(label)
    convert_voc(find_voc_year_dir(write_tree(tmp_path / "src", files), "2007"), tmp_path / "out")
    got = read_label(tmp_path / "out/labels/a.png", 21)
    assert np.array_equal(got, label)
    assert set(np.unique(got)) == set(range(21)) | {255}


def test_convert_voc_subset_of_ids(devkit, tmp_path):
    convert_voc(find_voc_year_dir(devkit, "2007"), tmp_path / "out", ids=["000039"])
    assert [p.name for p in (tmp_path / "out/images").iterdir()] == ["000039.jpg"]
    assert read_split(tmp_path / "out/sets/train.txt") == ["000039"]
    assert not (tmp_path / "out/sets/val.txt").exists()  # no val id was converted


def test_bad_label_value_names_the_file_and_leaves_nothing(tmp_path):
    files = voc_files()
    bad = voc_label(0)
    bad[0, 0] = 40
    files["VOCdevkit/VOC2007/SegmentationClass/000063.png"] = palette_png(bad)
    year_dir = find_voc_year_dir(write_tree(tmp_path / "src", files), "2007")
    with pytest.raises(SegaugError, match=r"SegmentationClass/000063.png: label values \[40\] are outside"):
        convert_voc(year_dir, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no out, no temp dir


def test_size_mismatch_names_both_files(tmp_path):
    files = voc_files()
    files["VOCdevkit/VOC2007/SegmentationClass/000039.png"] = palette_png(voc_label(1, h=20))
    year_dir = find_voc_year_dir(write_tree(tmp_path / "src", files), "2007")
    with pytest.raises(SegaugError, match=r"000039.png: label size 32x20 does not match image .*000039.jpg size 32x24"):
        convert_voc(year_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupt_or_missing_files_are_named(tmp_path):
    files = voc_files()
    files["VOCdevkit/VOC2007/JPEGImages/000039.jpg"] = b"not a jpeg"
    year_dir = find_voc_year_dir(write_tree(tmp_path / "src", files), "2007")
    with pytest.raises(SegaugError, match="JPEGImages/000039.jpg: cannot read image"):
        convert_voc(year_dir, tmp_path / "out")
    (year_dir / "JPEGImages/000039.jpg").unlink()
    with pytest.raises(SegaugError, match="JPEGImages/000039.jpg: image missing"):
        convert_voc(year_dir, tmp_path / "out")
    (year_dir / "SegmentationClass/000032.png").unlink()
    with pytest.raises(SegaugError, match="SegmentationClass/000032.png: label not found"):
        convert_voc(year_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_voc_members_selects_only_what_conversion_needs():
    names = list(voc_files("2012")) + [
        "VOCdevkit/VOC2012/JPEGImages",
        "VOCdevkit/VOC2007/JPEGImages/000032.jpg",
    ]
    got = set(voc_members(names, 2012))
    base = "VOCdevkit/VOC2012"
    assert got == {
        *(f"{base}/ImageSets/Segmentation/{s}.txt" for s in ("train", "val", "trainval")),
        *(f"{base}/SegmentationClass/{i}.png" for i in ("000032", "000039", "000063")),
        *(f"{base}/JPEGImages/{i}.jpg" for i in ("000032", "000039", "000063")),
    }


# ------------------------------------------------------------------ scripts


def test_prepare_dataset_script_from_voc_root_and_tar(devkit, tmp_path):
    p = run_script(
        ROOT / "scripts/prepare_dataset.py",
        "--kind",
        "voc",
        "--year",
        "2007",
        "--voc-root",
        devkit / "VOCdevkit",
        "--out",
        tmp_path / "a/ds",
    )
    assert p.returncode == 0, p.stderr
    tar = make_tar(tmp_path / "voc.tar", voc_files())
    p = run_script(
        ROOT / "scripts/prepare_dataset.py",
        "--kind",
        "voc",
        "--year",
        "2007",
        "--voc-tar",
        tar,
        "--out",
        tmp_path / "b/ds",
    )
    assert p.returncode == 0, p.stderr
    for sub in ("images", "labels", "sets"):
        a = sorted(x.name for x in (tmp_path / "a/ds" / sub).iterdir())
        assert a == sorted(x.name for x in (tmp_path / "b/ds" / sub).iterdir())
        for name in a:
            assert (tmp_path / "a/ds" / sub / name).read_bytes() == (tmp_path / "b/ds" / sub / name).read_bytes()
    assert [x.name for x in (tmp_path / "b").iterdir()] == ["ds"]  # the extraction dir is gone
    assert not (tmp_path / "b/ds/images/009999.jpg").exists()  # only segmentation images


def test_prepare_dataset_script_user_errors(devkit, tmp_path):
    script = ROOT / "scripts/prepare_dataset.py"
    line = one_error_line(run_script(script, "--kind", "voc", "--voc-root", devkit, "--out", tmp_path / "x"))
    assert "a VOC-layout dataset that is not PASCAL VOC (no 'year') needs its class table" in line
    line = one_error_line(
        run_script(script, "--kind", "voc", "--year", "2012", "--voc-root", devkit, "--out", tmp_path / "x")
    )
    assert "no VOC2012 devkit found" in line
    tar = make_tar(tmp_path / "voc.tar", voc_files("2007"))
    line = one_error_line(
        run_script(script, "--kind", "voc", "--year", "2012", "--voc-tar", tar, "--out", tmp_path / "x")
    )
    assert "voc.tar: holds no VOC2012 segmentation data" in line
    line = one_error_line(
        run_script(
            script, "--kind", "voc", "--year", "2007", "--voc-tar", tmp_path / "none.tar", "--out", tmp_path / "x"
        )
    )
    assert "none.tar: archive not found" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "voc.tar"]


def fake_dataset(root, ids):
    """A canonical dataset with tiny images/labels for ``ids``."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in ids:
        Image.new("RGB", (4, 4)).save(root / "images" / f"{i}.jpg")
        Image.new("L", (4, 4)).save(root / "labels" / f"{i}.png")
    return root


def test_make_split_with_the_u2pl_92_list(tmp_path, shared_data):
    lst = tmp_path / "92-labeled.txt"  # a copy in tmp, never in the repository
    shutil.copy(shared_data / "u2pl-voc12-splits/92-labeled.txt", lst)
    raw = lst.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == U2PL_92_SHA256
    assert not raw.endswith(b"\n")  # the U2PL lists end without a final newline
    ids = read_split(lst)
    assert len(ids) == 92 and ids[0].startswith("20") and all(len(i) == 11 for i in ids)

    val = ["2007_000033", "2007_000042", "2007_000061"]
    assert not set(val) & set(ids)
    (tmp_path / "val.txt").write_text("\n".join(f"{i} 0" for i in val))  # extra column, no newline
    root = fake_dataset(tmp_path / "ds", ids + val)
    args = [
        ROOT / "scripts/make_split.py",
        "--dataset-root",
        root,
        "--train-list",
        lst,
        "--val-list",
        tmp_path / "val.txt",
        "--out-train",
        tmp_path / "s/train.txt",
        "--out-val",
        tmp_path / "s/val.txt",
    ]
    p = run_script(*args)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "s/train.txt").read_text() == "".join(i + "\n" for i in ids)
    assert read_split(tmp_path / "s/val.txt") == val

    # ids missing from the dataset: the list file and the first missing ids are named
    shutil.rmtree(tmp_path / "s")
    for i in ids[3:6]:
        (root / "labels" / f"{i}.png").unlink()
    line = one_error_line(run_script(*args))
    assert f"{lst}: 3 of 92 ids are not in the dataset" in line
    assert str(ids[3:6]) in line
    assert not (tmp_path / "s").exists()


def test_make_split_rejects_overlap_and_empty_lists(tmp_path):
    root = fake_dataset(tmp_path / "ds", ["a", "b", "c"])
    (tmp_path / "t.txt").write_text("a\nb\n")
    (tmp_path / "v.txt").write_text("b\nc")
    (tmp_path / "e.txt").write_text("\n")
    base = [
        ROOT / "scripts/make_split.py",
        "--dataset-root",
        root,
        "--out-train",
        tmp_path / "o/t.txt",
        "--out-val",
        tmp_path / "o/v.txt",
    ]
    line = one_error_line(run_script(*base, "--train-list", tmp_path / "t.txt", "--val-list", tmp_path / "v.txt"))
    assert "share 1 ids, e.g. ['b']" in line
    line = one_error_line(run_script(*base, "--train-list", tmp_path / "e.txt", "--val-list", tmp_path / "v.txt"))
    assert "e.txt: split list is empty" in line
    line = one_error_line(
        run_script(
            *base,
            "--train-list",
            tmp_path / "t.txt",
            "--val-list",
            tmp_path / "v.txt",
            "--dataset-root",
            tmp_path / "nope",
        )
    )
    assert "not a canonical dataset" in line
    assert not (tmp_path / "o").exists()
