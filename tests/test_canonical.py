"""The canonical dataset layout: class table, images, labels, split lists."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from segaug.data.canonical import (
    IGNORE_INDEX,
    ClassTable,
    Sample,
    check_label_values,
    class_pixel_counts,
    image_path,
    label_path,
    load_pair,
    read_image,
    read_label,
    read_split,
    samples,
    voc_class_table,
    voc_palette,
    write_image,
    write_label,
    write_split,
)
from segaug.errors import SegaugError


def palette_png(path, label, palette):
    im = Image.fromarray(label, mode="P")
    im.putpalette([v for c in palette for v in c])
    im.save(path, format="PNG")


# ------------------------------------------------------------------ class table


def test_class_table_roundtrip_index_and_colorize(tmp_path):
    t = ClassTable(("a", "b"), ((0, 0, 0), (255, 0, 0)))
    assert t.num_classes == 2 and t.ignore_index == IGNORE_INDEX
    t.save(tmp_path / "classes.json")
    t2 = ClassTable.load(tmp_path / "classes.json")
    assert t2 == t and t2.index("b") == 1 and t2.indices(["b", "a"]) == [1, 0]
    rgb = t2.colorize(np.array([[0, 1, 255]], np.uint8))
    assert rgb.tolist() == [[[0, 0, 0], [255, 0, 0], [255, 255, 255]]]


def test_class_table_errors(tmp_path):
    t = ClassTable(("a", "b"), ((0, 0, 0), (255, 0, 0)))
    with pytest.raises(SegaugError, match="unknown class 'c'; known classes: a, b"):
        t.index("c")
    with pytest.raises(SegaugError, match="2 names but 1 palette"):
        ClassTable(("a", "b"), ((0, 0, 0),))
    with pytest.raises(SegaugError, match="duplicate class names"):
        ClassTable(("a", "a"), ((0, 0, 0), (1, 1, 1)))
    with pytest.raises(SegaugError, match="classes.json: class table not found"):
        ClassTable.load(tmp_path / "classes.json")
    (tmp_path / "classes.json").write_text("{nope")
    with pytest.raises(SegaugError, match="classes.json: not valid JSON"):
        ClassTable.load(tmp_path / "classes.json")
    (tmp_path / "classes.json").write_text('{"names": ["a"]}')
    with pytest.raises(SegaugError, match="classes.json: expected keys 'names' and 'palette'"):
        ClassTable.load(tmp_path / "classes.json")


def test_voc_class_table_and_palette():
    t = voc_class_table()
    assert t.num_classes == 21 and t.names[0] == "background" and t.index("person") == 15
    pal = voc_palette()
    assert len(pal) == 256
    assert pal[:4] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    assert pal[15] == (192, 128, 128) and pal[255] == (224, 224, 192)  # person; the void border


# ------------------------------------------------------------------ images and labels


def test_label_roundtrip_keeps_indices_and_ignore(tmp_path):
    lab = np.array([[0, 1, 255], [2, 2, 0]], np.uint8)
    write_label(tmp_path / "l.png", lab)
    with Image.open(tmp_path / "l.png") as im:
        assert im.mode == "L"
    got = read_label(tmp_path / "l.png", 3)
    assert got.dtype == np.uint8 and np.array_equal(got, lab)
    with pytest.raises(ValueError, match="2-D uint8"):
        write_label(tmp_path / "x.png", lab.astype(np.int32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.png"]  # no temp left


@settings(max_examples=25, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9))))
def test_label_roundtrip_any_values(tmp_path_factory, label):
    path = tmp_path_factory.mktemp("lab") / "l.png"
    write_label(path, label)
    assert np.array_equal(read_label(path), label)


def test_palette_png_gives_indices_not_colours(tmp_path):
    lab = np.array([[0, 15, 255], [7, 20, 1]], np.uint8)
    palette_png(tmp_path / "p.png", lab, voc_palette())
    got = read_label(tmp_path / "p.png", 21)
    assert got.shape == (2, 3) and np.array_equal(got, lab)


def test_rgb_label_is_rejected(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(SegaugError, match="rgb.png: label must be a single-channel index PNG"):
        read_label(tmp_path / "rgb.png")


def test_label_index_outside_table(tmp_path):
    write_label(tmp_path / "l.png", np.array([[0, 7, 255, 9]], np.uint8))
    with pytest.raises(SegaugError, match=r"l.png: label values \[7, 9\] are outside the class table \(0..2, 255"):
        read_label(tmp_path / "l.png", 3)
    check_label_values(np.array([[0, 2, 255]], np.uint8), 3, "ok")  # no error


def test_corrupt_and_missing_files_are_named(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(SegaugError, match="bad.jpg: cannot read image"):
        read_image(tmp_path / "bad.jpg")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # truncated
    with pytest.raises(SegaugError, match="cut.jpg: cannot read image"):
        read_image(tmp_path / "cut.jpg")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(SegaugError, match="bad.png: cannot read label"):
        read_label(tmp_path / "bad.png")
    with pytest.raises(SegaugError, match="none.jpg: image not found"):
        read_image(tmp_path / "none.jpg")
    with pytest.raises(SegaugError, match="none.png: label not found"):
        read_label(tmp_path / "none.png")


def test_write_image_png_is_lossless_jpeg_close(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)
    smooth = np.full((16, 16, 3), (40, 120, 200), np.uint8)
    write_image(tmp_path / "a.jpg", smooth)
    with Image.open(tmp_path / "a.jpg") as im:
        assert im.format == "JPEG"
    assert np.abs(read_image(tmp_path / "a.jpg").astype(int) - smooth).max() <= 3


def test_size_mismatch_names_both_files(tmp_path):
    Image.new("RGB", (8, 6)).save(tmp_path / "i.png")
    write_label(tmp_path / "l.png", np.zeros((5, 8), np.uint8))
    with pytest.raises(SegaugError, match="l.png: label size 8x5 does not match image .*i.png size 8x6"):
        load_pair(Sample("i", tmp_path / "i.png", tmp_path / "l.png"))


def test_samples_resolve_ids_and_count_pixels(tmp_path):
    write_image(tmp_path / "images/a.png", np.zeros((2, 3, 3), np.uint8))
    Image.new("RGB", (3, 2)).save(tmp_path / "images/b.jpg")
    write_label(tmp_path / "labels/a.png", np.array([[0, 1, 1], [255, 2, 2]], np.uint8))
    write_label(tmp_path / "labels/b.png", np.zeros((2, 3), np.uint8))
    s = samples(tmp_path, ["a", "b"])
    assert [x.image.name for x in s] == ["a.png", "b.jpg"]
    pairs = [load_pair(x, 3) for x in s]
    assert class_pixel_counts([lab for _, lab in pairs], 3).tolist() == [7, 2, 2]
    with pytest.raises(SegaugError, match="no image for id 'c'"):
        image_path(tmp_path, "c")
    with pytest.raises(SegaugError, match="c.png: label not found for id 'c'"):
        label_path(tmp_path, "c")


# ------------------------------------------------------------------ split lists


def test_split_lists(tmp_path):
    write_split(tmp_path / "s.txt", ["x", "y"])
    assert (tmp_path / "s.txt").read_text() == "x\ny\n"
    assert read_split(tmp_path / "s.txt") == ["x", "y"]
    (tmp_path / "cols.txt").write_text("2007_000032 1\n\n2007_000039 -1")  # columns, no final newline
    assert read_split(tmp_path / "cols.txt") == ["2007_000032", "2007_000039"]


def test_split_list_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(SegaugError, match="empty.txt: split list is empty"):
        read_split(tmp_path / "empty.txt")
    (tmp_path / "dup.txt").write_text("a\nb\na\nc\nb")
    with pytest.raises(SegaugError, match=r"dup.txt: duplicate ids in split list, e.g. \['a', 'b'\]"):
        read_split(tmp_path / "dup.txt")
    with pytest.raises(SegaugError, match="none.txt: split list not found"):
        read_split(tmp_path / "none.txt")
    with pytest.raises(SegaugError, match="refusing to write an empty split list"):
        write_split(tmp_path / "w.txt", [])
    assert not (tmp_path / "w.txt").exists()
