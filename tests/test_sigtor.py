"""SIGtor-style pasting: packing, grouping, blending, mask clean-up and the dataset writer."""

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segaug.data.canonical import ClassTable, read_label, read_split, write_image, write_label
from segaug.errors import SegaugError
from segaug.paste import Candidate
from segaug.paste import blend as blend_mod
from segaug.paste.blend import (
    BLEND_MODES,
    POISSON_RING,
    blend_object,
    blend_object_mode,
    clean_mask,
    tight_box,
)
from segaug.paste.sigtor import (
    annotation_lines,
    augment_object,
    color_jitter,
    group_objects,
    pack,
    sigtor_dataset,
    sigtor_image,
    size_dependent_scale,
)
from segaug.pool import PoolObject, build_pool, load_pool

TABLE = ClassTable(
    ("background", "car", "person", "road"),
    ((0, 0, 0), (200, 0, 0), (0, 200, 0), (90, 90, 90)),
)


from test_paste import disc_rgba as ellipse_rgba  # noqa: E402  (the pool-style ellipse object)


def noise_image(H=60, W=80, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def placed_mask(H, W, rgba, x, y) -> np.ndarray:
    """The object's alpha mask at (x, y), clipped to H x W (reference for blend_object)."""
    full = np.zeros((H + 2 * rgba.shape[0], W + 2 * rgba.shape[1]), bool)
    h, w = rgba.shape[:2]
    full[y + h : y + 2 * h, x + w : x + 2 * w] = rgba[..., 3] >= 128
    return full[h : h + H, w : w + W]


# ---------------------------------------------------------------- pack


def separated(a, b, margin) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax + aw + margin <= bx or bx + bw + margin <= ax or ay + ah + margin <= by or by + bh + margin <= ay


def window_free(occ, x, y, w, h, margin) -> bool:
    return occ is None or not occ[max(y - margin, 0) : y + h + margin, max(x - margin, 0) : x + w + margin].any()


def fits_somewhere(w, h, W, H, occ, rects, margin) -> bool:
    """Brute force: is there any corner where (w, h) is free of ``occ`` and of ``rects``?"""
    for y in range(H - h + 1):
        for x in range(W - w + 1):
            if window_free(occ, x, y, w, h, margin) and all(separated((x, y, w, h), r, margin) for r in rects):
                return True
    return False


def make_occupied(H, W, seed, kind):
    if kind == "none":
        return None
    rng = np.random.default_rng(seed)
    occ = rng.random((H, W)) < (0.02 if kind == "sparse" else 0.15)
    if kind == "block":
        occ[:] = False
        y, x = rng.integers(0, H), rng.integers(0, W)
        occ[y : y + rng.integers(1, H + 1), x : x + rng.integers(1, W + 1)] = True
    return occ


@settings(max_examples=400, deadline=None)
@given(
    W=st.integers(1, 40),
    H=st.integers(1, 40),
    sizes=st.lists(st.tuples(st.integers(1, 25), st.integers(1, 25)), max_size=8),
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["none", "sparse", "dense", "block"]),
    margin=st.integers(0, 2),
    max_tries=st.sampled_from([0, 1, 8, 64]),
)
def test_pack_never_overlaps_leaves_image_or_covers_occupied(W, H, sizes, seed, kind, margin, max_tries):
    occ = make_occupied(H, W, seed, kind)
    out = pack(sizes, W, H, np.random.default_rng(seed), occ, margin, max_tries)
    assert len(out) == len(sizes)
    rects = [(p[0], p[1], *s) for p, s in zip(out, sizes) if p is not None]
    for x, y, w, h in rects:
        assert x >= 0 and y >= 0 and x + w <= W and y + h <= H  # inside the image
        assert window_free(occ, x, y, w, h, margin)  # no occupied pixel, margin kept
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert separated(a, b, margin)  # margin apart, hence never overlapping
    for p, (w, h) in zip(out, sizes):  # None only when nothing fits (even among all placed)
        if p is None:
            assert not fits_somewhere(w, h, W, H, occ, rects, margin)
    assert out == pack(sizes, W, H, np.random.default_rng(seed), occ, margin, max_tries)


def test_pack_finds_the_only_free_spots_and_reports_no_room():
    # everything occupied but two 5x5 holes: the exact search finds exactly those
    occ = np.ones((10, 20), bool)
    occ[2:7, 1:6] = occ[4:9, 13:18] = False
    for tries in (0, 64):
        out = pack([(5, 5), (5, 5)], 20, 10, np.random.default_rng(1), occ, 0, tries)
        assert sorted(out) == [(1, 2), (13, 4)]
    assert pack([(5, 5)], 20, 10, np.random.default_rng(1), occ, margin=1) == [None]
    assert pack([(20, 10)], 20, 10, np.random.default_rng(1)) == [(0, 0)]
    occ = np.ones((20, 20), bool)
    assert pack([(1, 1), (30, 2)], 20, 20, np.random.default_rng(0), occ) == [None, None]
    with pytest.raises(ValueError):
        pack([(0, 3)], 20, 20, np.random.default_rng(0))


# ---------------------------------------------------------------- grouping


def test_group_objects_transitive_chain_and_ios_rule():
    boxes = [
        (0, 0, 10, 10),  # 0: A
        (8, 0, 18, 10),  # 1: B overlaps A (IoU 0.11)
        (16, 0, 26, 10),  # 2: C overlaps B only -> joins A through B
        (50, 50, 60, 60),  # 3: D alone
        (100, 100, 200, 200),  # 4: big box
        (110, 110, 120, 120),  # 5: inside 4: IoU 0.01, IoS 1.0
    ]
    assert group_objects(boxes, 0.1, 0.5) == [[0, 1, 2], [3], [4, 5]]
    assert group_objects(boxes, 0.1, 1.0) == [[0, 1, 2], [3], [4], [5]]  # IoS must exceed
    assert group_objects(boxes, 0.2, 0.5) == [[0], [1], [2], [3], [4, 5]]  # IoU 0.11 < 0.2
    assert group_objects([], 0.1, 0.5) == []


def pool_obj(crop, source, box, cls=1):
    return PoolObject(crop, Path(crop), cls, TABLE.names[cls], 1, box, source, False)


def test_annotation_lines_follow_sigtor_expansion():
    a = pool_obj("a", "s", (0, 0, 40, 40))
    b = pool_obj("b", "s", (10, 10, 20, 20))  # inside A
    c = pool_obj("c", "s", (30, 0, 60, 40))  # overlaps A
    d = pool_obj("d", "s", (100, 100, 110, 110))  # alone
    e = pool_obj("e", "t", (0, 0, 40, 40))  # same box as A, other image
    lines = annotation_lines([a, b, c, d, e])
    crops = {k: [o.crop for o in v] for k, v in lines.items()}
    assert crops == {"a": ["a", "b", "c"], "b": ["b"], "c": ["a", "b", "c"], "d": ["d"], "e": ["e"]}


# ---------------------------------------------------------------- blending


@pytest.mark.parametrize("mode", BLEND_MODES)
def test_blend_modes_mask_and_where_pixels_change(mode):
    img = noise_image()
    before = img.copy()
    rgba = ellipse_rgba(25, 31)
    out, mask = blend_object(img, rgba, 20, 15, mode, feather_px=2)
    assert (img == before).all()  # input untouched
    assert (mask == placed_mask(60, 80, rgba, 20, 15)).all()
    changed = (out != img).any(axis=2)
    if mode == "poisson":
        x0, y0, x1, y1 = tight_box(mask)
        r = POISSON_RING
        near = np.zeros_like(mask)
        near[max(y0 - r, 0) : y1 + r, max(x0 - r, 0) : x1 + r] = True
        assert not (changed & ~near).any()  # only the box grown by the ring may change
        assert changed[mask].mean() > 0.9
    else:
        assert not (changed & ~mask).any()  # hard and feather never touch the outside
    if mode == "hard":
        assert (out[mask] == rgba[..., :3][rgba[..., 3] == 255]).all()


def test_feather_equals_hard_deep_inside_and_fades_at_the_edge():
    img = noise_image()
    rgba = ellipse_rgba(31, 41)
    hard, m = blend_object(img, rgba, 10, 10, "hard")
    soft, m2 = blend_object(img, rgba, 10, 10, "feather", feather_px=2)
    assert (m == m2).all()
    dist = cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    assert (hard[dist > 5] == soft[dist > 5]).all()
    edge = m & (dist <= 1)
    assert (hard[edge] != soft[edge]).any(axis=1).mean() > 0.8


@pytest.mark.parametrize("xy", [(-6, -4), (0, 0), (80 - 31 + 5, 60 - 25 + 3), (80 - 31, 60 - 25), (-20, 50), (75, -20)])
def test_poisson_at_and_across_the_border(xy):
    img = noise_image()
    rgba = ellipse_rgba(25, 31, seed=3)
    out, mask, used = blend_object_mode(img, rgba, *xy, "poisson")
    assert used == "poisson"
    assert (mask == placed_mask(60, 80, rgba, *xy)).all()
    assert (out[mask] != img[mask]).any(axis=1).mean() > 0.9
    again, _, _ = blend_object_mode(img, rgba, *xy, "poisson")
    assert (again == out).all()  # deterministic (seamlessClone writes into its mask arg)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_poisson_tiny_objects_in_corners(size):
    img = noise_image(20, 30)
    rgba = np.full((size, size, 4), 255, np.uint8)
    for x, y in [(0, 0), (30 - size, 20 - size), (-size + 1, 5)]:
        out, mask, used = blend_object_mode(img, rgba, x, y, "poisson")
        assert used == "poisson" and mask.sum() == (placed_mask(20, 30, rgba, x, y)).sum()


def test_poisson_refused_falls_back_to_feather(monkeypatch, caplog):
    def refuse(*a, **k):
        raise cv2.error("refused for the test")

    monkeypatch.setattr(blend_mod.cv2, "seamlessClone", refuse)
    img, rgba = noise_image(), ellipse_rgba()
    with caplog.at_level(logging.WARNING, logger="segaug.paste.blend"):
        out, mask, used = blend_object_mode(img, rgba, 5, 5, "poisson", feather_px=2)
    assert used == "feather"
    assert "refused" in caplog.text and "feather" in caplog.text
    ref, ref_mask = blend_object(img, rgba, 5, 5, "feather", feather_px=2)
    assert (out == ref).all() and (mask == ref_mask).all()


def test_blend_outside_image_and_bad_mode():
    img, rgba = noise_image(), ellipse_rgba()
    for mode in BLEND_MODES:
        out, mask = blend_object(img, rgba, 200, 5, mode)
        assert (out == img).all() and not mask.any()
    with pytest.raises(ValueError, match="unknown blend"):
        blend_object(img, rgba, 0, 0, "magic")


# ---------------------------------------------------------------- masks


def test_clean_mask_drops_specks_and_thin_lines_and_fills_holes():
    m = np.zeros((40, 50), bool)
    m[5:25, 5:25] = True
    m[12:15, 12:15] = False  # a hole
    m[30, 30] = True  # a speck
    m[33:35, 40:42] = True  # a 2x2 blob (4 px)
    m[5:25, 35] = True  # a 1-px line
    m[0:6, 45:50] = True  # touches the border: kept
    out = clean_mask(m, min_area=10, open_px=1)
    assert not out[30, 30] and not out[33:35, 40:42].any() and not out[5:25, 35].any()
    assert out[12:15, 12:15].all()  # hole filled
    # the opening (a 3x3 cross) only rounds the square's four convex corners
    assert out[5:25, 5:25].sum() == 400 - 4 and out[6:24, 5:25].all()
    assert out[0:5, 45:50].all()  # kept although it touches the border
    region = np.zeros_like(m)
    region[5:25, 5:25] = region[0:6, 45:50] = True
    assert not (out & ~region).any()
    no_fill = clean_mask(m, 10, 1, fill_holes=False)
    assert not no_fill[12:15, 12:15].any() and no_fill[6:12, 5:25].all()
    kept = clean_mask(m, min_area=1, open_px=0)  # no opening: specks and line stay
    assert kept[30, 30] and kept[5:25, 35].all() and kept[12:15, 12:15].all()
    border_bay = np.zeros((10, 10), bool)
    border_bay[0:6, 0:6] = True
    border_bay[0:3, 2:4] = False  # open to the image edge: not a hole
    assert (clean_mask(border_bay, 1, 0) == border_bay).all()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), density=st.floats(0.0, 0.05))
def test_tight_box_is_the_mask_extent(seed, density):
    m = np.random.default_rng(seed).random((23, 31)) < density
    box = tight_box(m)
    if not m.any():
        assert box is None
        return
    ys, xs = np.nonzero(m)
    assert box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


# ---------------------------------------------------------------- augmentation


def test_size_dependent_scale_rule():
    lo_hi = (0.5, 2.0)
    small = [size_dependent_scale(u, 20, 80, lo_hi) for u in np.linspace(0, 0.999, 50)]
    large = [size_dependent_scale(u, 320, 80, lo_hi) for u in np.linspace(0, 0.999, 50)]
    ref = [size_dependent_scale(u, 80, 80, lo_hi) for u in np.linspace(0, 0.999, 50)]
    assert min(small) >= 0.8 - 1e-9 and max(small) <= 2.0 and np.median(small) > 1.2
    assert min(large) >= 0.5 and max(large) <= 1.25 + 1e-9 and np.median(large) < 0.8
    assert min(ref) >= 0.8 - 1e-9 and max(ref) <= 1.25 + 1e-9
    assert size_dependent_scale(0.5, 10, 80, (1.5, 3.0)) >= 1.5  # range respected


def test_augment_object_is_deterministic_and_keeps_alpha_binary():
    rgba = ellipse_rgba(30, 40)
    a, pa = augment_object(rgba, np.random.default_rng(3), blur_prob=1.0)
    b, pb = augment_object(rgba, np.random.default_rng(3), blur_prob=1.0)
    assert pa == pb and (a == b).all() and pa.blur_sigma > 0
    assert set(np.unique(a[..., 3])) <= {0, 255}
    assert a.shape[:2] == (round(30 * pa.scale), round(40 * pa.scale))
    j = color_jitter(rgba, 1.2, 0.8, 0.5)
    assert (j[..., 3] == rgba[..., 3]).all()  # alpha untouched
    off = rgba[..., 3] < 128
    assert (j[off] == rgba[off]).all() and (j[~off] != rgba[~off]).any()


# ---------------------------------------------------------------- one image


def test_sigtor_image_groups_move_together_and_labels_are_exact():
    img, lab = noise_image(80, 100), np.zeros((80, 100), np.uint8)
    lab[60:80, 80:100] = 1  # an existing car: must stay
    img0, lab0 = img.copy(), lab.copy()
    big, small = ellipse_rgba(20, 30, 1), ellipse_rgba(8, 8, 2)
    objs = [
        (big, 1, "big", "src", (10, 10, 40, 30)),
        (small, 2, "small", "src", (20, 15, 28, 23)),
        (ellipse_rgba(12, 12, 4), 2, "lone"),
    ]
    for blend in BLEND_MODES:
        out, olab, recs, skipped = sigtor_image(
            np.random.default_rng(0),
            img,
            lab,
            objs,
            blend=blend,
            flip_prob=0.0,
            scale_range=(1.0, 1.0),
            jitter=0.0,
            blur_prob=0.0,
            min_area=4,
        )
        assert (img == img0).all() and (lab == lab0).all()
        assert skipped == 0 and [r["reason"] for r in recs] == ["packed"] * 3
        g0, g1, lone = recs
        assert g0["group"] == g1["group"] != lone["group"]
        assert (g1["x"] - g0["x"], g1["y"] - g0["y"]) == (10, 5)  # layout of the source
        assert (olab[60:80, 80:100] == 1).all()  # existing object kept
        for r in recs:
            x0, y0, x1, y1 = r["box"]
            win = olab[r["y"] : r["y"] + r["height"], r["x"] : r["x"] + r["width"]]
            if r["object_id"] == "big":  # the small one sits on top of it
                assert (olab[y0:y1, x0:x1] == 2).sum() == g1["pixels"]
            assert (win == r["class_index"]).sum() == r["pixels"] > 0
            assert r["blend"] == blend


def test_sigtor_image_no_room():
    img, lab = noise_image(30, 30), np.ones((30, 30), np.uint8)  # all car: all protected
    out, olab, recs, skipped = sigtor_image(
        np.random.default_rng(0),
        img,
        lab,
        [(ellipse_rgba(), 1, "x"), (ellipse_rgba(), 2, "y")],
        protect_classes=[1],
    )
    assert skipped == 2 and {r["reason"] for r in recs} == {"no room"}
    assert (out == img).all() and (olab == lab).all()
    out, olab, recs, skipped = sigtor_image(
        np.random.default_rng(0), img, lab, [(ellipse_rgba(), 1, "x")], keep_existing=False
    )
    assert skipped == 0 and (olab == 1).all()


def test_sigtor_image_accepts_candidates_tuples_and_nothing():
    img, lab = noise_image(), np.zeros((60, 80), np.uint8)
    cand = Candidate.make("crops/1.png", 2, "person", ellipse_rgba(12, 10), 1.0, False)
    objs = [cand, (ellipse_rgba(9, 9), 1, "t", "src", (0, 0, 9, 9))]
    out, olab, recs, skipped = sigtor_image(np.random.default_rng(2), img, lab, objs, blend="feather", min_area=4)
    assert skipped == 0 and [r["object_id"] for r in recs] == ["crops/1.png", "t"]
    assert recs[0]["class_name"] == "person" and recs[1]["source_id"] == "src"
    assert {int(v) for v in np.unique(olab)} == {0, 1, 2}
    out, olab, recs, skipped = sigtor_image(np.random.default_rng(2), img, lab, [])
    assert (out == img).all() and (olab == lab).all() and recs == [] and skipped == 0


# ---------------------------------------------------------------- dataset


def make_dataset(root: Path, n=5, H=64, W=80) -> list[str]:
    """Noise images with a road band, a car ellipse and a person block; image 0 also has a
    person overlapping its car's box (a SIGtor group)."""
    TABLE.save(root / "classes.json")
    yy, xx = np.mgrid[:H, :W]
    ids = []
    for i in range(n):
        rng = np.random.default_rng(100 + i)
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        lab = np.zeros((H, W), np.uint8)
        lab[H - 12 :] = 3
        cy, cx = 14 + 2 * i, 16 + 6 * i
        lab[((yy - cy) / 7) ** 2 + ((xx - cx) / 10) ** 2 <= 1] = 1
        lab[30:44, 50 + i : 58 + i] = 2
        if i == 0:
            lab[cy - 4 : cy + 8, cx + 4 : cx + 12] = 2  # mostly inside the car's box
        lab[40, 10] = 255
        write_image(root / "images" / f"im{i}.png", img)
        write_label(root / "labels" / f"im{i}.png", lab)
        ids.append(f"im{i}")
    return ids


@pytest.fixture
def data(tmp_path):
    ids = make_dataset(tmp_path / "data")
    build_pool(tmp_path / "data", ids, TABLE, ["car", "person"], 0.05, 10, False, tmp_path / "pool")
    return tmp_path / "data", ids, load_pool(tmp_path / "pool")


def files_bytes(d: Path) -> dict:
    files = sorted(p for p in d.rglob("*") if p.is_file())
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in files}


def test_sigtor_dataset_deterministic_and_labels_match_manifest(data, tmp_path):
    root, ids, pool = data
    assert any(len(v) > 1 for v in annotation_lines(pool).values())  # image 0 has a group
    kw = dict(objects_per_image=(2, 3), copies_per_image=2, min_area=4)
    s = sigtor_dataset(root, ids, pool, 7, tmp_path / "a", **kw)
    sigtor_dataset(root, ids, pool, 7, tmp_path / "b", **kw)
    sigtor_dataset(root, ids, pool, 8, tmp_path / "c", **kw)
    a, b, c = (files_bytes(tmp_path / k) for k in "abc")
    assert a == b  # same seed: byte-identical
    assert a.keys() == c.keys() and a != c
    assert read_split(tmp_path / "a" / "sets" / "all.txt") == [f"{i}_s{k}" for i in ids for k in range(2)]
    assert ClassTable.load(tmp_path / "a" / "classes.json") == TABLE
    lines = [json.loads(x) for x in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    assert s["pastes"] == len(lines) > 0 and s["images_written"] == 10
    assert sum(s["per_class_pastes"].values()) == len(lines)
    by_out: dict[str, list[dict]] = {}
    for r in lines:
        by_out.setdefault(r["output_id"], []).append(r)
        assert r["reason"] == "packed" and r["blend"] == "poisson"
        assert r["class_name"] == TABLE.names[r["class_index"]]
    assert any(r["group_size"] == 2 for r in lines)  # image 0's car + person came as a group
    for out_id in read_split(tmp_path / "a" / "sets" / "all.txt"):
        src_id, _ = out_id.rsplit("_s", 1)
        lab = read_label(tmp_path / "a" / "labels" / f"{out_id}.png")
        src = read_label(root / "labels" / f"{src_id}.png")
        touched = np.zeros(lab.shape, bool)
        groups: dict[int, list[dict]] = {}
        for r in by_out.get(out_id, []):
            x, y, w, h = r["x"], r["y"], r["width"], r["height"]
            touched[y : y + h, x : x + w] = True
            groups.setdefault(r["group"], []).append(r)
            cls = lab[y : y + h, x : x + w] == r["class_index"]
            x0, y0, x1, y1 = r["box"]
            assert x <= x0 < x1 <= x + w and y <= y0 < y1 <= y + h
            if r["group_size"] == 1:  # alone in its window: the box is the label's extent
                bx = tight_box(cls)
                assert [bx[0] + x, bx[1] + y, bx[2] + x, bx[3] + y] == r["box"]
                assert cls.sum() == r["pixels"]
        for members in groups.values():  # a group's windows hold exactly its members' pixels
            region = np.zeros(lab.shape, bool)
            for r in members:
                region[r["y"] : r["y"] + r["height"], r["x"] : r["x"] + r["width"]] = True
            for c in {r["class_index"] for r in members}:
                want = sum(r["pixels"] for r in members if r["class_index"] == c)
                assert (lab[region] == c).sum() == want
        assert (lab[~touched] == src[~touched]).all()  # nothing else changed
        protected = np.isin(src, [1, 2])  # existing cars and persons are never pasted over
        assert (lab[protected] == src[protected]).all()


def test_sigtor_dataset_bad_options(data, tmp_path):
    root, ids, pool = data
    with pytest.raises(SegaugError, match="blend: .magic.; use one of hard, feather, poisson"):
        sigtor_dataset(root, ids, pool, 0, tmp_path / "x", blend="magic")
    with pytest.raises(SegaugError, match="objects_per_image"):
        sigtor_dataset(root, ids, pool, 0, tmp_path / "x", objects_per_image=(3, 1))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("blend", ["poisson", "feather"])
def test_sigtor_dataset_same_bytes_for_any_number_of_workers(data, tmp_path, blend):
    root, ids, pool = data
    kw = dict(objects_per_image=(2, 3), copies_per_image=2, min_area=4, blend=blend)
    sigtor_dataset(root, ids, pool, 3, tmp_path / "w1", workers=1, **kw)
    sigtor_dataset(root, ids, pool, 3, tmp_path / "w3", workers=3, **kw)
    assert files_bytes(tmp_path / "w1") == files_bytes(tmp_path / "w3")
    assert not list(tmp_path.glob(".w3*"))  # one staging directory, renamed into place
