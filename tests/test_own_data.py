"""A user's own dataset, checked at the door.

Datasets that are not PASCAL VOC (six classes of their own, their own palette, odd sizes,
grayscale JPEGs, 255 borders), as a VOC-layout export (CVAT's layout, colour-coded masks and a
labelmap.txt) and in the canonical layout. Each defect is one clear error naming the file,
nothing is written, and nothing outside the dataset is opened.
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import ROOT, run_snakemake
from own_data import NAMES, PALETTE, SIZES, ids, index_label, layout, make_canonical, make_voc_export, rgb_png
from segaug.data.canonical import ClassTable, read_label, read_split
from segaug.data.class_tables import read_labelmap
from segaug.data.kinds import dataset_class_table, dataset_fingerprint
from segaug.data.verify import verify_canonical
from segaug.data.voc import convert_voc, find_voc_year_dir
from segaug.errors import SegaugError
from segaug.workflow.checks import class_problems, class_tables

MAKERS = {"voc": make_voc_export, "canonical": make_canonical}


def convert(kind, root, out):
    """The conversion (VOC layout) or the in-place check (canonical) the workflow runs."""
    if kind == "voc":
        table = ClassTable.from_dict(dataset_class_table("mine", {"kind": "voc", "path": str(root)}))
        return convert_voc(find_voc_year_dir(root, None), out, table=table, pascal=False, workers=2)
    return verify_canonical(root, workers=2)


# ------------------------------------------------------------------ class tables


def test_labelmap_as_cvat_documents_it(tmp_path):
    """CVAT's documentation (docs.cvat.ai/docs/dataset_management/formats/format-smask/) shows
    this labelmap.txt; line order is index order."""
    quoted = (
        "# label : color (RGB) : 'body' parts : actions\n"
        "background:0,128,0::\naeroplane:10,10,128::\nbicycle:10,128,0::\nbird:0,108,128::\n"
        "boat:108,0,100::\nbottle:18,0,8::\nbus:12,28,0::\n"
    )
    (tmp_path / "labelmap.txt").write_text(quoted)
    t = read_labelmap(tmp_path / "labelmap.txt")
    assert t["names"][:2] == ["background", "aeroplane"] and len(t["names"]) == 7
    assert t["palette"][0] == [0, 128, 0] and t["palette"][6] == [12, 28, 0]
    (tmp_path / "bad.txt").write_text("road:1,2\n")
    with pytest.raises(SegaugError, match=r"bad.txt:1: colour '1,2' of class 'road' is not r,g,b"):
        read_labelmap(tmp_path / "bad.txt")


def test_class_table_sources_in_order(tmp_path):
    make_voc_export(tmp_path / "exp")
    d = {"kind": "voc", "path": str(tmp_path / "exp")}
    t = dataset_class_table("mine", d)
    assert t["names"] == list(NAMES) and t["palette"][4] == list(PALETTE[4])
    assert t["source"].endswith("labelmap.txt")
    # the config wins over the file; palette defaults to the VOC colour map
    t = dataset_class_table("mine", {**d, "classes": ["bg", "thing"]})
    assert t["names"] == ["bg", "thing"] and t["palette"][1] == [128, 0, 0]
    # PASCAL VOC itself (a year, no table file) keeps its 21 classes; an export without one must say
    os.remove(tmp_path / "exp/labelmap.txt")
    with pytest.raises(
        SegaugError, match=r"datasets.mine: a VOC-layout dataset that is not PASCAL VOC .* labelmap.txt"
    ):
        dataset_class_table("mine", d)
    make_canonical(tmp_path / "can")
    assert dataset_class_table("c", {"kind": "canonical", "path": str(tmp_path / "can")})["names"] == list(NAMES)
    with pytest.raises(SegaugError, match=r"datasets.c.path: .*nowhere/classes.json not found"):
        dataset_class_table("c", {"kind": "canonical", "path": str(tmp_path / "nowhere")})


def test_config_class_names_are_checked_against_the_dataset(tmp_path):
    make_voc_export(tmp_path / "exp")
    cfg = {
        "datasets": {"mine": {"kind": "voc", "path": str(tmp_path / "exp")}, "unused": {"kind": "voc", "year": "2012"}},
        "splits": {"s": {"dataset": "mine"}},
        "pool": {"classes": ["car", "baot"]},
        "context": {"surfaces": {"source": "label", "names": ["road", "water"]}, "rules": {"car": {}, "ship": {}}},
        "generative": {"class_prompts": {"tree": "a tree"}, "balance_exclude": ["background", "sky"]},
    }
    tables, problems = class_tables(cfg)
    assert list(tables) == ["mine"] and not problems  # only datasets a split uses are read
    found = class_problems(cfg, tables)
    known = "known: background, road, building, tree, car, boat"
    assert [p.split(";")[0] for p in found] == [
        "pool.classes[1]: unknown class 'baot'",
        "context.rules.ship: unknown class 'ship'",
        "context.surfaces.names[1]: unknown class 'water'",
        "generative.balance_exclude[1]: unknown class 'sky'",
    ]
    assert all(known in p for p in found)


# ------------------------------------------------------------------ conversion of a good dataset


def test_voc_export_converts_with_its_own_classes(tmp_path):
    names = make_voc_export(tmp_path / "exp", split=False)  # CVAT lists everything in default.txt
    convert("voc", tmp_path / "exp", tmp_path / "out")
    out = tmp_path / "out"
    table = ClassTable.load(out / "classes.json")
    assert table.names == NAMES and table.palette == PALETTE
    for k, i in enumerate(names):  # colours -> indices, the void colour -> 255, grey JPEGs copied
        w, h = SIZES[k]
        assert np.array_equal(read_label(out / f"labels/{i}.png", 6), index_label(k, w, h))
        assert (out / f"images/{i}.jpg").read_bytes() == (tmp_path / f"exp/JPEGImages/{i}.jpg").read_bytes()
    assert read_split(out / "sets/default.txt") == names
    src = json.loads((out / "source.json").read_text())
    assert {"labelmap.txt", "JPEGImages/frame_0000.jpg", "SegmentationClass/frame_0005.png"} <= {
        f[0] for f in src["files"]
    }


# ------------------------------------------------------------------ defects


def out_of_table(root, kind, names):
    lab = index_label(0, *SIZES[0])
    lab[0, 0] = 9
    p = layout(root, kind)["labels"] / f"{names[0]}.png"
    if kind == "voc":  # frame 0 is the palette-indexed mask of the export
        im = Image.fromarray(lab, mode="P")
        im.putpalette([v for c in PALETTE for v in c] * 40)
        im.save(p)
    else:
        Image.fromarray(lab, mode="L").save(p)
    return p, r"label values \[9\] are outside the class table \(0..5, 255 = ignore\)"


def unknown_colour(root, kind, names):
    lab = index_label(1, *SIZES[1])
    rgb = np.asarray(Image.open(io.BytesIO(rgb_png(lab)))).copy()
    rgb[:3, :3] = (255, 0, 255)
    p = layout(root, kind)["labels"] / f"{names[1]}.png"
    Image.fromarray(rgb).save(p)
    if kind == "voc":
        return p, r"colours not in the class table's palette: \[255, 0, 255\] in 9 pixels"
    return p, "colour-coded label"


def truncated_jpeg(root, kind, names):
    p = layout(root, kind)["images"] / f"{names[2]}.jpg"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p, "cannot read image .*truncated"


def size_mismatch(root, kind, names):
    p = layout(root, kind)["labels"] / f"{names[3]}.png"
    with Image.open(p) as im:
        im.crop((0, 0, 20, 20)).save(p)
    return p, "label size 20x20 does not match image"


def path_traversal(root, kind, names):
    decoy = root.parent / "outside" / "secret.jpg"  # what ../../outside/secret would reach
    decoy.parent.mkdir(exist_ok=True)
    decoy.write_bytes(b"decoy")
    shutil.copyfile(decoy, decoy.with_suffix(".png"))
    lst = layout(root, kind)["train"]
    lst.write_text(lst.read_text() + "../../outside/secret\n")
    return lst, r"id '../../outside/secret' is a path, not a plain name"


def duplicate_id(root, kind, names):
    lst = layout(root, kind)["train"]
    lst.write_text(lst.read_text() + f"{names[0]}\n")
    return lst, rf"1 duplicate ids, e.g. \['{names[0]}'\]"


def symlink_out(root, kind, names):
    outside = root.parent / "outside" / "elsewhere.jpg"
    outside.parent.mkdir(exist_ok=True)
    p = layout(root, kind)["images"] / f"{names[4]}.jpg"
    shutil.move(p, outside)
    p.symlink_to(outside)
    return p, "resolves outside the dataset"


DEFECTS = [out_of_table, unknown_colour, truncated_jpeg, size_mismatch, path_traversal, duplicate_id, symlink_out]


class Opened(list):
    """Files opened under a folder while recording (sys.addaudithook 'open' events)."""

    def __init__(self, under):
        super().__init__()
        self.under, self.recording = str(under), False
        sys.addaudithook(self.hook)  # audit hooks cannot be removed: it just stops recording

    def hook(self, event, args):
        if self.recording and event == "open" and isinstance(args[0], (str, os.PathLike)):
            path = os.path.realpath(args[0])
            if path.startswith(self.under):
                self.append(path)


@pytest.fixture
def opened(tmp_path):
    rec = Opened(tmp_path)
    yield rec
    rec.recording = False


@pytest.mark.parametrize("kind", ["voc", "canonical"])
@pytest.mark.parametrize("defect", DEFECTS, ids=lambda f: f.__name__)
def test_each_defect_is_one_clear_error_and_nothing_is_written(tmp_path, kind, defect, opened):
    root = tmp_path / "data" / "ds"
    names = MAKERS[kind](root)
    path, message = defect(root, kind, names)
    before = {p: p.lstat().st_mtime_ns for p in root.rglob("*")}
    opened.recording = True
    with pytest.raises(SegaugError) as e:
        convert(kind, root, tmp_path / "out")
    opened.recording = False
    msg = str(e.value)
    assert str(path) in msg, msg
    assert re.search(message, msg), msg
    assert msg.endswith("nothing was written") and "1 problem:" in msg
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    ours = (str(root) + os.sep, str(tmp_path / "out"), str(tmp_path / ".out"))
    outside = [p for p in opened if not p.startswith(ours)]
    assert not outside, outside  # the decoys and symlink targets were never opened
    assert {p: p.lstat().st_mtime_ns for p in root.rglob("*")} == before  # the user's files untouched


def test_all_problems_are_reported_together(tmp_path):
    root = tmp_path / "exp"
    names = make_voc_export(root, n=26)
    for i in names[1:]:  # 25 masks with a colour that is not a class
        p = root / "SegmentationClass" / f"{i}.png"
        rgb = np.asarray(Image.open(p)).copy()
        rgb[0, 0] = (1, 2, 3)
        Image.fromarray(rgb).save(p)
    truncated_jpeg(root, "voc", names)
    with pytest.raises(SegaugError) as e:
        convert("voc", root, tmp_path / "out")
    msg = str(e.value)
    assert msg.startswith(f"VOC-layout dataset {root}: 26 problems (first 20): ")
    assert msg.count("colours not in the class table's palette: [1, 2, 3]") + msg.count("truncated") == 20
    assert "... and 6 more; nothing was written" in msg


@pytest.mark.parametrize("kind", ["voc", "canonical"])
def test_the_script_prints_one_error_line(tmp_path, kind):
    root = tmp_path / "ds"
    names = MAKERS[kind](root)
    truncated_jpeg(root, kind, names)
    out = tmp_path / "out"
    if kind == "voc":
        classes = json.dumps({"names": list(NAMES), "palette": [list(c) for c in PALETTE]})
        args = ["--kind", "voc", "--voc-root", root, "--classes-json", classes, "--out", out]
    else:
        args = ["--kind", "canonical", "--root", root, "--out", out]
    p = subprocess.run(
        [sys.executable, ROOT / "scripts/prepare_dataset.py", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{names[2]}.jpg: cannot read image" in errors[0], p.stderr
    assert not out.exists()


def test_fingerprint_follows_the_source_files(tmp_path):
    root = tmp_path / "exp"
    names = make_voc_export(root)
    d = {"kind": "voc", "path": str(root)}
    first = dataset_fingerprint(d)
    assert first.startswith("15 files") and first == dataset_fingerprint(d)
    img = root / "JPEGImages" / f"{names[0]}.jpg"
    img.write_bytes(img.read_bytes() + b"\0")  # replaced by the user
    assert dataset_fingerprint(d) != first
    (root / "JPEGImages" / "unlisted.jpg").write_bytes(b"x")  # not in a list: not a source
    second = dataset_fingerprint(d)
    assert dataset_fingerprint(d) == second
    lst = root / "ImageSets/Segmentation/train.txt"
    lst.write_text(lst.read_text() + "../../etc/passwd\n")  # never looked at, even by stat
    assert dataset_fingerprint(d).startswith("15 files")


# ------------------------------------------------------------------ through the workflow


def workflow_config(tmp_path, kind, root, **pool):
    cfg = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    cfg["datasets"] = {"mine": {"kind": kind, "path": str(root)}}
    cfg["splits"] = {"s": {"dataset": "mine", "train": "set:train", "val": "set:val"}}
    cfg["pool"].update({"classes": ["car", "boat"], "min_area": 4, **pool})
    cfg["context"]["surfaces"]["names"] = ["road", "building"]
    cfg["context"]["rules"]["boat"]["surfaces"] = ["building"]
    cfg["table1"]["splits"] = ["s"]
    cfg["ablations"]["split"] = "s"
    cfg["thesis"]["split"] = "s"
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.workflow
@pytest.mark.parametrize("kind", ["voc", "canonical"])
def test_misspelt_class_is_a_start_up_error_naming_the_key(tmp_path, kind):
    root = tmp_path / "ds"
    MAKERS[kind](root)
    cfg = workflow_config(tmp_path, kind, root, classes=["car", "baot"])
    t0 = time.monotonic()
    p = run_snakemake("-n", "--configfile", str(cfg), cwd=tmp_path, check=False)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "pool.classes[1]: unknown class 'baot'; known: background, road, building, tree, car, boat" in out, out[
        -2000:
    ]
    assert time.monotonic() - t0 < 60 and not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_own_voc_dataset_through_the_workflow(tmp_path):
    """kind: voc without a year: the export's labelmap gives the classes; the pool, the split
    and every table use them; a changed source file is converted again."""
    root = tmp_path / "exp"
    make_voc_export(root)
    cfg = workflow_config(tmp_path, "voc", root)
    pool = "results/demo/mine/s/pool"
    run_snakemake(pool, "--cores", "1", "--configfile", str(cfg), cwd=tmp_path)
    ds = tmp_path / "results/demo/mine/dataset"
    assert ClassTable.load(ds / "classes.json").names == NAMES
    summary = json.loads((tmp_path / pool / "pool.json").read_text())
    assert [(c["index"], c["name"]) for c in summary["classes"]] == [(4, "car"), (5, "boat")]
    assert all(c["objects"] > 0 for c in summary["classes"])
    # nothing changed: nothing to do
    p = run_snakemake(pool, "-n", "--configfile", str(cfg), cwd=tmp_path)
    assert "Nothing to be done" in p.stdout + p.stderr
    # the user replaces a source image: the conversion is planned again
    img = root / "JPEGImages" / f"{ids()[0]}.jpg"
    img.write_bytes(img.read_bytes()[:-200])  # now truncated
    p = run_snakemake(pool, "-n", "--configfile", str(cfg), cwd=tmp_path)
    assert "prepare_dataset" in p.stdout and "params" in p.stdout.lower(), p.stdout[-3000:]
    # ... and the run stops at the conversion, with the file named on the console
    p = run_snakemake(pool, "--cores", "1", "--configfile", str(cfg), "--show-failed-logs", cwd=tmp_path, check=False)
    assert p.returncode != 0
    assert f"error: VOC-layout dataset {root}: 1 problem: {img}: cannot read image" in p.stdout + p.stderr
    assert not ds.exists()  # the stale conversion is gone: nothing downstream can use it


@pytest.mark.workflow
def test_canonical_dataset_is_verified_once_and_again_when_it_changes(tmp_path):
    root = tmp_path / "can"
    names = make_canonical(root)
    cfg = workflow_config(tmp_path, "canonical", root)
    target = "results/demo/mine/s/splits/train.txt"
    run_snakemake(target, "--cores", "1", "--configfile", str(cfg), cwd=tmp_path)
    verified = json.loads((tmp_path / "results/demo/mine/verified.json").read_text())
    assert verified["images"] == 6 and verified["classes"] == list(NAMES)
    lab = root / "labels" / f"{names[1]}.png"
    arr = np.asarray(Image.open(lab)).copy()
    arr[0, 0] = 9
    Image.fromarray(arr, mode="L").save(lab)
    p = run_snakemake(target, "-n", "--configfile", str(cfg), cwd=tmp_path)
    assert "verify_dataset" in p.stdout, p.stdout[-3000:]
    p = run_snakemake(
        target,
        "--cores",
        "1",
        "--configfile",
        str(cfg),
        "--profile",
        str(ROOT / "profiles/local"),
        cwd=tmp_path,
        check=False,
    )
    assert p.returncode != 0
    # the profile shows the failed job's log on the console (show-failed-logs)
    assert f"{lab}: label values [9] are outside the class table" in p.stdout + p.stderr


# ------------------------------------------------------------------ a new dataset kind


def test_the_kinds_registry_makes_the_schema_and_needs_no_numpy():
    """The datasets block of the schema comes from the registry (a new kind is one module and
    one registry line: tests/test_extending.py adds one through Snakemake, as docs/extending.md
    says); the registry and the config checks import no numpy."""
    from segaug.data import kinds
    from segaug.workflow.config import load_schema

    block = load_schema()["properties"]["datasets"]["additionalProperties"]
    assert block["properties"]["kind"]["enum"] == list(kinds.REGISTRY) == ["voc", "demo", "canonical", "vaihingen"]
    thens = {c["if"]["properties"]["kind"]["const"]: c["then"] for c in block["allOf"]}
    assert thens["canonical"]["required"] == ["path"] and thens["voc"]["anyOf"] == [
        {"required": ["year"]},
        {"required": ["path"]},
    ]
    assert set(thens["demo"]["properties"]) == {"kind", "num_train", "num_val", "width", "height", "seed"}
    with pytest.raises(SegaugError, match="unknown dataset kind 'nope'; known: .*canonical, demo"):
        kinds.get_kind("nope")
    code = (
        "import sys, yaml; from segaug.workflow.config import validate_config; "
        "validate_config(yaml.safe_load(open('config/demo.yaml'))); "
        "import segaug.paste.methods, segaug.data.kinds; assert 'numpy' not in sys.modules"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
