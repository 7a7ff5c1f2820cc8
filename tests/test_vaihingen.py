"""ISPRS Vaihingen -> canonical layout, on a small fake dataset with the real folder names."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from segaug.data.canonical import ClassTable, read_image, read_label, read_split
from segaug.data.vaihingen import (
    ALL_TILES,
    TEST_TILES,
    TRAIN_TILES,
    VAIHINGEN_CLASSES,
    VAL_TILES,
    class_table,
    convert_vaihingen,
    find_tiles,
    patch_grid,
    rgb_to_index,
)
from segaug.errors import SegaugError

# A few tiles of each split; area 4 is smaller than a patch along both axes.
SPLITS = {"train": (1, 3), "val": (7,), "test": (2, 4)}
SIZES = {1: (260, 300), 3: (260, 300), 7: (256, 256), 2: (260, 300), 4: (100, 120)}  # (h, w)
PARTICIPANT_TILES = (1, 3, 7)  # like the real zip: no labels of the test areas for participants
COLOURS = np.array(class_table().palette, dtype=np.uint8)

BASE = "ISPRS_semantic_labeling_Vaihingen"
COMPLETE = "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE"
ERODED = "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE"


def index_label(tile, h, w):
    """Blocks of every class, different per tile."""
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy // 37 + xx // 23 + tile) % len(VAIHINGEN_CLASSES)).astype(np.uint8)


def eroded_mask(h, w):
    """The 'boundaries' the fake erosion removes: every 37th row and 23rd column."""
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy % 37 == 0) | (xx % 23 == 0)


def irrg(tile, h, w):
    return np.random.default_rng(tile).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save_tif(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, mode="RGB").save(path, format="TIFF")


@pytest.fixture
def vaihingen(tmp_path):
    """A fake extracted Vaihingen: ISPRS_semantic_labeling_Vaihingen/{top,gts_for_participants}
    plus the COMPLETE and eroded COMPLETE ground truth beside it (area 3's label as .tiff)."""
    root = tmp_path / "vaihingen"
    for tile, (h, w) in SIZES.items():
        ext = ".tiff" if tile == 3 else ".tif"
        name = f"top_mosaic_09cm_area{tile}"
        rgb = COLOURS[index_label(tile, h, w)]
        save_tif(root / BASE / "top" / f"{name}.tif", irrg(tile, h, w))
        save_tif(root / COMPLETE / f"{name}{ext}", rgb)
        if tile in PARTICIPANT_TILES:
            save_tif(root / BASE / "gts_for_participants" / f"{name}{ext}", rgb)
        eroded = rgb.copy()
        eroded[eroded_mask(h, w)] = 0
        save_tif(root / ERODED / f"{name}_noBoundary{ext}", eroded)
    return root


def tree_digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def expected_ids(tile):
    h, w = SIZES[tile]
    return [f"area{tile}_y{y}_x{x}" for y, x in patch_grid(h, w, 128, 128)]


# ------------------------------------------------------------------ constants and tiling rule


def test_thesis_split_and_classes():
    assert len(ALL_TILES) == 33 and len(set(ALL_TILES)) == 33
    assert (len(TRAIN_TILES), len(VAL_TILES), len(TEST_TILES)) == (13, 3, 17)
    table = class_table()
    assert table.names == VAIHINGEN_CLASSES and table.names[0] == "impervious surfaces"
    assert table.palette[table.index("building")] == (0, 0, 255)
    assert table.palette[table.index("car")] == (255, 255, 0)


@pytest.mark.parametrize(
    "h, w, size, stride, ys, xs",
    [
        (260, 300, 128, 128, [0, 128, 132], [0, 128, 172]),  # last row/column on the border
        (256, 256, 128, 128, [0, 128], [0, 128]),  # exact fit: no extra patch
        (300, 300, 128, 100, [0, 100, 172], [0, 100, 172]),  # overlapping stride
        (100, 120, 128, 128, [0], [0]),  # smaller than a patch: the whole tile
        (100, 300, 128, 128, [0], [0, 128, 172]),
    ],
)
def test_patch_grid(h, w, size, stride, ys, xs):
    grid = patch_grid(h, w, size, stride)
    assert grid == [(y, x) for y in ys for x in xs]
    covered = np.zeros((h, w), bool)
    for y, x in grid:
        covered[y : y + size, x : x + size] = True
    assert covered.all()


@pytest.mark.parametrize("size, stride", [(128, 0), (128, 129), (0, 0)])
def test_patch_grid_rejects_gaps(size, stride):
    with pytest.raises(SegaugError, match="stride"):
        patch_grid(300, 300, size, stride)


def test_rgb_to_index_exact_colours():
    rgb = np.array(
        [
            [[255, 255, 255], [0, 0, 255], [0, 255, 255]],
            [[0, 255, 0], [255, 255, 0], [255, 0, 0]],
            [[0, 0, 0], [0, 0, 0], [255, 255, 255]],
        ],
        dtype=np.uint8,
    )
    assert rgb_to_index(rgb, "x.tif").tolist() == [[0, 1, 2], [3, 4, 5], [255, 255, 0]]
    rgb[0, 0] = (254, 255, 255)
    rgb[1, 1] = (254, 255, 255)
    with pytest.raises(SegaugError, match=r"x\.tif: 2 pixels .*\(254, 255, 255\) in 2 pixels"):
        rgb_to_index(rgb, "x.tif")


# ------------------------------------------------------------------ finding the files


def test_find_tiles_prefers_participants_then_complete(vaihingen):
    found = find_tiles(vaihingen, [1, 3, 2], eroded=False)
    assert found[1] == (
        vaihingen / BASE / "top" / "top_mosaic_09cm_area1.tif",
        vaihingen / BASE / "gts_for_participants" / "top_mosaic_09cm_area1.tif",
    )
    assert found[3][1].name == "top_mosaic_09cm_area3.tiff"
    assert found[2][1] == vaihingen / COMPLETE / "top_mosaic_09cm_area2.tif"
    assert find_tiles(vaihingen, [2], eroded=True)[2][1] == vaihingen / ERODED / "top_mosaic_09cm_area2_noBoundary.tif"
    # the root may also be ISPRS_semantic_labeling_Vaihingen/ itself
    assert find_tiles(vaihingen / BASE, [1], eroded=False)[1][1].parent.name == "gts_for_participants"


def test_missing_tile_names_it(vaihingen):
    (vaihingen / COMPLETE / "top_mosaic_09cm_area2.tif").unlink()
    with pytest.raises(SegaugError) as e:
        find_tiles(vaihingen, [1, 2], eroded=False)
    msg = str(e.value)
    assert "area(s) [2]" in msg and "top_mosaic_09cm_area2.tif" in msg
    assert "gts_for_participants" in msg and COMPLETE in msg and "\n" not in msg
    with pytest.raises(SegaugError, match=r"no image for Vaihingen area\(s\) \[9\] \(\[9\] not among the 33"):
        find_tiles(vaihingen, [1, 9], eroded=False)
    with pytest.raises(SegaugError, match="not found"):
        find_tiles(vaihingen / "nope", [1], eroded=False)


# ------------------------------------------------------------------ conversion


@pytest.mark.parametrize("eroded", [False, True])
def test_convert(vaihingen, tmp_path, eroded):
    out = tmp_path / "canonical"
    summary = convert_vaihingen(vaihingen, out, patch_size=128, stride=128, eroded=eroded, splits=SPLITS)

    # patch ids per split: tiles in split order, row-major, last row/column border-aligned
    for name, tiles in SPLITS.items():
        ids = [i for t in tiles for i in expected_ids(t)]
        assert read_split(out / "sets" / f"{name}.txt") == ids
        assert summary["patches"][name] == len(ids)
    assert summary["patches"] == {"train": 18, "val": 4, "test": 10}
    assert expected_ids(1)[-3:] == ["area1_y132_x0", "area1_y132_x128", "area1_y132_x172"]
    assert expected_ids(4) == ["area4_y0_x0"]
    assert summary["tiles"] == {k: list(v) for k, v in SPLITS.items()}
    assert len(list((out / "images").iterdir())) == len(list((out / "labels").iterdir())) == 32
    assert ClassTable.load(out / "classes.json") == class_table()

    # pixels: IRRG unchanged, labels the class indices of the colours, black -> 255
    for tile, (h, w) in SIZES.items():
        image = irrg(tile, h, w)
        label = index_label(tile, h, w)
        if eroded:
            label[eroded_mask(h, w)] = 255
        for pid in expected_ids(tile):
            y, x = (int(p[1:]) for p in pid.split("_")[1:])
            got_label = read_label(out / "labels" / f"{pid}.png", num_classes=6)
            np.testing.assert_array_equal(got_label, label[y : y + 128, x : x + 128])
            np.testing.assert_array_equal(read_image(out / "images" / f"{pid}.png"), image[y : y + 128, x : x + 128])
            assert got_label.shape == ((128, 128) if tile != 4 else (100, 120))

    shares = summary["class_shares"]["train"]
    assert set(shares["classes"]) == set(VAIHINGEN_CLASSES)
    assert sum(shares["classes"].values()) == pytest.approx(1.0, abs=1e-5)
    assert (shares["ignore"] > 0) == eroded
    json.dumps(summary)  # plain data, loggable and storable


def test_convert_thesis_split_by_default(vaihingen, tmp_path):
    # the fake dataset lacks most areas: the default split asks for all 33
    with pytest.raises(SegaugError, match=r"no image for Vaihingen area\(s\) \[5, 11, 13"):
        convert_vaihingen(vaihingen, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_same_input_same_bytes(vaihingen, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    convert_vaihingen(vaihingen, a, patch_size=128, stride=128, splits=SPLITS)
    convert_vaihingen(vaihingen, b, patch_size=128, stride=128, splits=SPLITS)
    assert tree_digest(a) == tree_digest(b)
    assert len(tree_digest(a)) == 32 * 2 + 1 + 3


def assert_nothing_left(out):
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []


def test_unknown_colour_fails_cleanly(vaihingen, tmp_path):
    bad = vaihingen / COMPLETE / "top_mosaic_09cm_area2.tif"  # a test tile, converted last
    rgb = COLOURS[index_label(2, *SIZES[2])]
    rgb[10:12, 20:25] = (128, 64, 32)
    save_tif(bad, rgb)
    out = tmp_path / "out" / "canonical"
    with pytest.raises(SegaugError) as e:
        convert_vaihingen(vaihingen, out, patch_size=128, stride=128, splits=SPLITS)
    msg = str(e.value)
    assert msg.startswith(str(bad)) and "(128, 64, 32) in 10 pixels" in msg and "\n" not in msg
    assert_nothing_left(out)


def test_size_mismatch_fails_cleanly(vaihingen, tmp_path):
    label = vaihingen / BASE / "gts_for_participants" / "top_mosaic_09cm_area7.tif"
    save_tif(label, COLOURS[index_label(7, 250, 256)])
    out = tmp_path / "canonical"
    with pytest.raises(SegaugError, match=r"area7\.tif: ground truth size 256x250 does not match image .* 256x256"):
        convert_vaihingen(vaihingen, out, patch_size=128, stride=128, splits=SPLITS)
    assert_nothing_left(out)


def test_missing_tile_fails_before_writing(vaihingen, tmp_path):
    (vaihingen / ERODED / "top_mosaic_09cm_area4_noBoundary.tif").unlink()
    out = tmp_path / "canonical"
    with pytest.raises(SegaugError, match=r"no eroded ground truth for Vaihingen area\(s\) \[4\]"):
        convert_vaihingen(vaihingen, out, patch_size=128, stride=128, eroded=True, splits=SPLITS)
    assert_nothing_left(out)


def test_rejects_overlapping_or_empty_splits(vaihingen, tmp_path):
    with pytest.raises(SegaugError, match="area 1 is in both split 'train' and 'val'"):
        convert_vaihingen(vaihingen, tmp_path / "o", splits={"train": [1], "val": [1]})
    with pytest.raises(SegaugError, match="split 'val' lists no tiles"):
        convert_vaihingen(vaihingen, tmp_path / "o", splits={"train": [1], "val": []})
    assert_nothing_left(tmp_path / "o")


def test_existing_output_replaced(vaihingen, tmp_path):
    out = tmp_path / "canonical"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "stale.png").write_bytes(b"x")
    convert_vaihingen(vaihingen, out, patch_size=128, stride=128, splits={"train": [4], "val": [7], "test": [2]})
    assert not (out / "labels" / "stale.png").exists()
    assert read_split(out / "sets" / "train.txt") == ["area4_y0_x0"]
