"""Crop stage: connected components of hand-made labels, the pool on disk, minority classes."""

import csv
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from segaug.data.canonical import ClassTable, write_image, write_label
from segaug.errors import SegaugError
from segaug.pool import build_pool, extract_objects, load_pool, minority_classes_by_frequency

TABLE = ClassTable(("background", "cat", "dog", "bird"), ((0, 0, 0), (128, 0, 0), (0, 128, 0), (0, 0, 128)))
H, W = 20, 30


def hand_label() -> np.ndarray:
    """Known components (x1, y1 exclusive):
    cat  A: rectangle x 3..7, y 2..5         area 20, bbox (3, 2, 8, 6)
    cat  B: L shape (x 10, y 10..12) + (x 11..13, y 12)   area 6, bbox (10, 10, 14, 13)
    cat  C: one pixel (x 20, y 15)           area 1, bbox (20, 15, 21, 16)
    dog  D: x 25..29, y 0..3, on the border  area 20, bbox (25, 0, 30, 4)
    bird E: diagonal pixels (x 5, y 16), (x 6, y 17): one component with 8-connectivity
    """
    lab = np.zeros((H, W), np.uint8)
    lab[2:6, 3:8] = 1
    lab[10:13, 10] = 1
    lab[12, 11:14] = 1
    lab[15, 20] = 1
    lab[0:4, 25:30] = 2
    lab[16, 5] = 3
    lab[17, 6] = 3
    lab[8, 0:3] = 255  # ignore pixels are nobody's object
    return lab


def hand_image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def by_bbox(objs):
    return {o.bbox: o for o in objs}


def test_components_areas_and_boxes():
    objs = by_bbox(extract_objects(hand_image(), hand_label(), [1, 2, 3], min_area=1))
    assert {b: (o.class_index, o.area, o.touches_border) for b, o in objs.items()} == {
        (3, 2, 8, 6): (1, 20, False),
        (10, 10, 14, 13): (1, 6, False),
        (20, 15, 21, 16): (1, 1, False),
        (25, 0, 30, 4): (2, 20, True),
        (5, 16, 7, 18): (3, 2, False),
    }
    for b, o in objs.items():
        assert o.rgba.shape == (b[3] - b[1], b[2] - b[0], 4)
        assert (o.width, o.height) == (b[2] - b[0], b[3] - b[1])


def test_connectivity_4_splits_diagonal():
    objs = extract_objects(hand_image(), hand_label(), [3], min_area=1, connectivity=4)
    assert sorted(o.area for o in objs) == [1, 1]


def test_min_area_and_border_drop():
    img, lab = hand_image(), hand_label()
    areas = sorted(o.area for o in extract_objects(img, lab, [1, 2, 3], min_area=6))
    assert areas == [6, 20, 20]
    kept = extract_objects(img, lab, [1, 2, 3], min_area=6, drop_border=True)
    assert sorted((o.class_index, o.area) for o in kept) == [(1, 6), (1, 20)]


def test_only_requested_classes():
    objs = extract_objects(hand_image(), hand_label(), [2], min_area=1)
    assert [o.class_index for o in objs] == [2]


def test_rgba_alpha_equals_component_mask():
    img, lab = hand_image(), hand_label()
    for o in extract_objects(img, lab, [1, 2, 3], min_area=1):
        x0, y0, x1, y1 = o.bbox
        inside = o.rgba[..., 3] == 255
        assert set(np.unique(o.rgba[..., 3])) <= {0, 255}
        assert int(inside.sum()) == o.area
        assert (lab[y0:y1, x0:x1][inside] == o.class_index).all()
        assert (o.rgba[..., :3][inside] == img[y0:y1, x0:x1][inside]).all()
        assert (o.rgba[..., :3][~inside] == 0).all()
    # the L shape's box holds background pixels that are not part of it
    L = by_bbox(extract_objects(img, lab, [1], min_area=1))[(10, 10, 14, 13)]
    assert L.rgba[0, 1, 3] == 0 and L.rgba[0, 0, 3] == 255


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_components_partition_class_pixels(seed):
    rng = np.random.default_rng(seed)
    lab = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=(12, 15), p=[0.5, 0.2, 0.2, 0.1])
    img = rng.integers(0, 256, (12, 15, 3), dtype=np.uint8)
    objs = extract_objects(img, lab, [1, 2], min_area=1)
    for c in (1, 2):
        assert sum(o.area for o in objs if o.class_index == c) == int((lab == c).sum())
    canvas = np.zeros(lab.shape, np.int32)
    for o in objs:
        x0, y0, x1, y1 = o.bbox
        canvas[y0:y1, x0:x1] += o.rgba[..., 3] == 255
    assert canvas.max(initial=0) <= 1  # components never overlap


def test_minority_by_frequency():
    assert minority_classes_by_frequency([900, 40, 0, 60], 0.05) == [1]
    assert minority_classes_by_frequency(np.array([900, 40, 0, 60]), 0.1) == [1, 3]
    assert minority_classes_by_frequency([0, 0], 0.5) == []
    with pytest.raises(SegaugError):
        minority_classes_by_frequency([1, 2], 0.0)


# ---------------------------------------------------------------- pool on disk


def make_dataset(root, n=3):
    TABLE.save(root / "classes.json")
    ids = []
    for i in range(n):
        lab = hand_label()
        if i == 1:
            lab = np.fliplr(lab).copy()
        img = np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8)
        write_image(root / "images" / f"im{i}.png", img)
        write_label(root / "labels" / f"im{i}.png", lab)
        ids.append(f"im{i}")
    return ids


def read_index(pool):
    with open(pool / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_build_pool_from_config(tmp_path):
    ids = make_dataset(tmp_path / "data")
    out = tmp_path / "pool"
    summary = build_pool(tmp_path / "data", ids, TABLE, ["cat", "dog"], 0.05, 6, False, out)
    rows = read_index(out)
    assert list(rows[0]) == [
        "crop",
        "class_index",
        "class_name",
        "area",
        "x0",
        "y0",
        "x1",
        "y1",
        "width",
        "height",
        "source_id",
        "touches_border",
    ]
    assert len(rows) == 3 * 3  # per image: cat A, cat L, dog D
    assert [r["crop"] for r in rows] == [f"crops/{n:06d}.png" for n in range(9)]
    assert {r["class_name"] for r in rows} == {"cat", "dog"}
    assert sum(r["touches_border"] == "1" for r in rows) == 3
    pj = json.loads((out / "pool.json").read_text())
    assert pj == summary
    assert pj["class_source"] == "config" and pj["num_objects"] == 9
    assert {c["name"]: c["objects"] for c in pj["classes"]} == {"cat": 6, "dog": 3}
    assert all(c["reason"] == "named in config" for c in pj["classes"])

    pool = load_pool(out)
    assert len(pool) == 9
    for r, o in zip(rows, pool):
        with Image.open(out / r["crop"]) as im:
            assert im.mode == "RGBA"
        a = o.rgba()
        assert a.shape == (o.height, o.width, 4)
        assert int((a[..., 3] == 255).sum()) == o.area == int(r["area"])
    assert pool[0].source_id == "im0"
    assert not list(tmp_path.glob(".pool.*"))  # no temporary left beside the pool


def test_build_pool_minority_by_frequency(tmp_path):
    ids = make_dataset(tmp_path / "data", n=2)
    out = tmp_path / "pool"
    summary = build_pool(tmp_path / "data", ids, TABLE, None, 0.05, 1, True, out)
    # per image: 600 px total - 3 ignore; cat 27 (4.5%), dog 20 (3.4%), bird 2 -> all minority
    assert summary["class_source"] == "frequency"
    assert [c["name"] for c in summary["classes"]] == ["cat", "dog", "bird"]
    assert "max_fraction" in summary["classes"][0]["reason"]
    # drop_border removes the dog on both images -> no dog objects
    assert {c["name"]: c["objects"] for c in summary["classes"]} == {"cat": 6, "dog": 0, "bird": 2}
    summary = build_pool(tmp_path / "data", ids, TABLE, None, 0.04, 1, False, out)
    assert [c["name"] for c in summary["classes"]] == ["dog", "bird"]


def test_empty_pool_is_a_clear_error(tmp_path):
    ids = make_dataset(tmp_path / "data", n=1)
    out = tmp_path / "pool"
    with pytest.raises(SegaugError, match=r"empty object pool.*\[cat, bird\].*min_area"):
        build_pool(tmp_path / "data", ids, TABLE, ["cat", "bird"], 0.05, 1000, False, out)
    assert not out.exists() and not list(tmp_path.glob(".pool.*"))


def test_unknown_class_lists_known(tmp_path):
    ids = make_dataset(tmp_path / "data", n=1)
    with pytest.raises(SegaugError, match="unknown class 'cow'.*background, cat, dog, bird"):
        build_pool(tmp_path / "data", ids, TABLE, ["cow"], 0.05, 1, False, tmp_path / "pool")


def test_no_minority_class_is_a_clear_error(tmp_path):
    ids = make_dataset(tmp_path / "data", n=1)
    with pytest.raises(SegaugError, match="max_fraction"):
        build_pool(tmp_path / "data", ids, TABLE, None, 0.001, 1, False, tmp_path / "pool")


def test_load_pool_missing(tmp_path):
    with pytest.raises(SegaugError, match="index.csv.*pool.py"):
        load_pool(tmp_path)
