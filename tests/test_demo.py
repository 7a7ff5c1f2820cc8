"""The procedural "shapes" demo dataset."""

import cv2
import numpy as np
import pytest
from test_voc import one_error_line, run_script

from conftest import ROOT
from segaug.data.canonical import ClassTable, Sample, load_pair, read_label, read_split
from segaug.data.demo import BOAT, CAR, DEMO_CLASSES, ROAD, WATER, class_table, generate_demo, generate_image
from segaug.errors import SegaugError


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory):
    """The default demo dataset (48 train / 24 val, 160x120, seed 0) and its summary."""
    root = tmp_path_factory.mktemp("demo") / "shapes"
    return root, generate_demo(root)


def all_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_class_table():
    t = class_table()
    assert t.names == DEMO_CLASSES == ("grass", "road", "water", "building", "tree", "car", "boat")
    assert len(set(t.palette)) == 7 and (t.index("car"), t.index("boat")) == (CAR, BOAT)


def test_layout_sets_and_sizes(default_demo):
    root, summary = default_demo
    assert summary["images"] == 72
    train, val = read_split(root / "sets/train.txt"), read_split(root / "sets/val.txt")
    assert len(train) == 48 and len(val) == 24 and not set(train) & set(val)
    assert ClassTable.load(root / "classes.json") == class_table()
    assert sorted(p.name for p in root.iterdir()) == ["classes.json", "images", "labels", "sets"]
    assert sorted(p.stem for p in (root / "images").glob("*.png")) == sorted(train + val)
    for i in train + val:  # every label valid (0..6, 255) and the size of its image
        img, lab = load_pair(Sample(i, root / f"images/{i}.png", root / f"labels/{i}.png"), 7)
        assert img.shape == (120, 160, 3) and lab.shape == (120, 160)


def test_minority_classes_are_rare_but_present(default_demo):
    root, summary = default_demo
    counts = np.zeros(256, np.int64)
    without = {CAR: 0, BOAT: 0}
    for i in read_split(root / "sets/train.txt"):
        lab = read_label(root / f"labels/{i}.png", 7)
        c = np.bincount(lab.ravel(), minlength=256)
        counts += c
        for k in without:
            without[k] += c[k] == 0
    frac = counts[:7] / counts[:7].sum()
    assert summary["train_pixel_fraction"] == dict(zip(DEMO_CLASSES, frac.round(4).tolist()))
    for k in (CAR, BOAT):
        assert 0.003 < frac[k] < 0.05, (DEMO_CLASSES[k], frac[k])
        assert 0 < without[k] < 48  # some images have none
    for k in range(5):  # every surface and majority class outweighs each minority class
        assert frac[k] > max(frac[CAR], frac[BOAT]), (DEMO_CLASSES[k], frac)
    assert counts[255] > 0


def test_minority_objects_sit_on_their_surface_inside_an_ignore_ring(default_demo):
    root, _ = default_demo
    for i in read_split(root / "sets/train.txt")[:24]:
        lab = read_label(root / f"labels/{i}.png")
        for cls, surface in ((CAR, ROAD), (BOAT, WATER)):
            m = (lab == cls).astype(np.uint8)
            if not m.any():
                continue
            kernel = np.ones((3, 3), np.uint8)
            ring = cv2.dilate(m, kernel).astype(bool) & ~m.astype(bool)
            assert (lab[ring] == 255).all(), i  # a 1-px ignore band all around
            outer = cv2.dilate(m, kernel, iterations=2).astype(bool) & ~cv2.dilate(m, kernel).astype(bool)
            assert set(np.unique(lab[outer])) <= {surface, 255}, (i, DEMO_CLASSES[cls])
    assert not np.isin(lab, [7, 8]).any()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    generate_demo(tmp_path / "a", num_train=5, num_val=2, seed=3)
    generate_demo(tmp_path / "b", num_train=5, num_val=2, seed=3)
    generate_demo(tmp_path / "c", num_train=5, num_val=2, seed=4)
    a, b, c = (all_bytes(tmp_path / x) for x in "abc")
    assert a == b and len(a) == 7 * 2 + 3
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.parts[0] in ("images", "labels"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no temp left


def test_image_i_depends_only_on_seed_and_index(tmp_path, default_demo):
    """More images or another size of train set: image i is still the same bytes."""
    root, _ = default_demo
    generate_demo(tmp_path / "d", num_train=2, num_val=1, seed=0)
    for i in ("shapes_00000", "shapes_00002"):
        for sub in ("images", "labels"):
            assert (tmp_path / f"d/{sub}/{i}.png").read_bytes() == (root / f"{sub}/{i}.png").read_bytes()


def test_classes_differ_in_colour():
    """A small CNN can tell the classes apart: their mean colours are far apart."""
    sums, n = np.zeros((7, 3)), np.zeros(7)
    for i in range(12):
        img, lab = generate_image(np.random.default_rng([0, i]), 160, 120)
        for k in range(7):
            sums[k] += img[lab == k].sum(0)
            n[k] += (lab == k).sum()
    means = sums / n[:, None]
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert dist[~np.eye(7, dtype=bool)].min() > 25, means.round()


def test_other_sizes_and_bad_arguments(tmp_path):
    img, lab = generate_image(np.random.default_rng([1, 0]), 64, 48)
    assert img.shape == (48, 64, 3) and lab.shape == (48, 64)
    with pytest.raises(SegaugError, match="num_train .* must be at least 1"):
        generate_demo(tmp_path / "x", num_train=0)
    with pytest.raises(SegaugError, match="at least 48 pixels, got 16x120"):
        generate_demo(tmp_path / "x", width=16)
    assert list(tmp_path.iterdir()) == []


def test_prepare_dataset_script_demo(tmp_path):
    args = [
        "--kind",
        "demo",
        "--num-train",
        "3",
        "--num-val",
        "2",
        "--width",
        "64",
        "--height",
        "48",
        "--seed",
        "7",
    ]
    p = run_script(ROOT / "scripts/prepare_dataset.py", *args, "--out", tmp_path / "ds")
    assert p.returncode == 0, p.stderr
    assert read_split(tmp_path / "ds/sets/val.txt") == ["shapes_00003", "shapes_00004"]
    generate_demo(tmp_path / "lib", 3, 2, 64, 48, 7)
    assert all_bytes(tmp_path / "ds") == all_bytes(tmp_path / "lib")
    line = one_error_line(
        run_script(ROOT / "scripts/prepare_dataset.py", "--kind", "demo", "--num-val", "0", "--out", tmp_path / "bad")
    )
    assert "num_val (0) must be at least 1" in line
