"""Open-vocabulary surfaces (segaug.openvocab): surface maps, label-derived surfaces, the
CLIPSeg and SAM 2 + CLIP sources on tiny random-weight models, and their assignment rules.

Everything runs offline on CPU (HF_HUB_OFFLINE=1, conftest); the rules are checked exactly on
hand-made masks and scores, the models only for shapes, value ranges and determinism.
"""

import json

import numpy as np
import pytest
import torch

from segaug.data.canonical import ClassTable, write_image
from segaug.errors import SegaugError
from segaug.openvocab import build_source, source_class
from segaug.openvocab.surfaces import (
    NO_SURFACE,
    SurfaceMap,
    SurfaceSource,
    assign_by_threshold,
    combine,
    from_label,
    split_surfaces,
    surface_lookup,
    surface_map_path,
    surface_maps,
)

SURFACES = ["road", "grass", "water"]


def table(*names):
    return ClassTable(tuple(names), tuple((i, i, i) for i in range(len(names))))


def scene(h=64, w=48):
    """A structured RGB image: a red bottom band, a green top-right block, black elsewhere."""
    yy, xx = np.mgrid[:h, :w]
    image = np.zeros((h, w, 3), np.uint8)
    image[yy > h // 2] = (200, 50, 50)
    image[(yy <= h // 2) & (xx > w // 2)] = (50, 200, 50)
    return image


def check_map(smap, names, shape):
    assert isinstance(smap, SurfaceMap)
    assert smap.names == names and smap.shape == shape and smap.index.dtype == np.uint8
    assert set(np.unique(smap.index)) <= set(range(len(names))) | {NO_SURFACE}


# ------------------------------------------------------------------------------ SurfaceMap


def test_surface_map_roundtrip(tmp_path):
    index = np.array([[0, 1, 255], [2, 2, 0]], np.uint8)
    smap = SurfaceMap(["road", "grass", "water"], index)
    path = smap.save(tmp_path / "maps" / "img1.png")
    meta = json.loads((tmp_path / "maps" / "img1.json").read_text())
    assert meta == {"names": ["road", "grass", "water"], "height": 2, "width": 3}
    back = SurfaceMap.load(path)
    assert back.names == smap.names and np.array_equal(back.index, index)
    assert np.array_equal(back.mask("water"), index == 2)
    assert back.share("grass") == pytest.approx(1 / 6)
    with pytest.raises(SegaugError, match="unknown surface 'sand'"):
        back.mask("sand")


def test_surface_map_rejects_bad_values_and_files(tmp_path):
    with pytest.raises(SegaugError, match=r"index values \[3\]"):
        SurfaceMap(["road"], np.array([[0, 3]], np.uint8))
    with pytest.raises(SegaugError, match="duplicate"):
        SurfaceMap(["road", "road"], np.zeros((1, 1), np.uint8))
    path = SurfaceMap(["road"], np.zeros((2, 2), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "a.json").unlink()
    with pytest.raises(SegaugError, match="sidecar"):
        SurfaceMap.load(path)
    with pytest.raises(SegaugError, match="not found"):
        SurfaceMap.load(tmp_path / "missing.png")


# ------------------------------------------------------------------------- label surfaces


def test_from_label_picks_the_label_surface_classes():
    ct = table("background", "road", "car", "water")
    label = np.array([[0, 1, 2], [3, 1, 255]], np.uint8)
    smap = from_label(label, ct, ["water", "road"])
    assert smap.names == ["water", "road"]
    assert smap.index.tolist() == [[255, 1, 255], [0, 1, 255]]
    assert split_surfaces(ct, ["road", "grass", "water"]) == (["road", "water"], ["grass"])


def test_from_label_unknown_surface_names_it_and_the_classes():
    ct = table("background", "car")
    with pytest.raises(SegaugError) as e:
        from_label(np.zeros((2, 2), np.uint8), ct, ["road"])
    assert "'road'" in str(e.value) and "background, car" in str(e.value)


def test_combine_label_wins_where_defined():
    label_map = SurfaceMap(["road"], np.array([[0, 255, 255, 255]], np.uint8))
    predicted = SurfaceMap(["grass", "road"], np.array([[0, 1, 0, 255]], np.uint8))
    both = combine(label_map, predicted)
    assert both.names == ["road", "grass"]
    # pixel 0: label road beats predicted grass; 1: predicted road; 2: predicted grass; 3: none
    assert both.index.tolist() == [[0, 0, 1, 255]]
    only_bg = combine(label_map, predicted, where=np.array([[True, False, True, True]]))
    assert only_bg.index.tolist() == [[0, 255, 1, 255]]
    with pytest.raises(SegaugError, match="differ in size"):
        combine(label_map, SurfaceMap(["grass"], np.zeros((2, 2), np.uint8)))


# ------------------------------------------------------------------ assignment rules, exact


def test_assign_by_threshold_rule():
    probs = np.array([[[0.5, 0.2, 0.45]], [[0.3, 0.35, 0.45]]], np.float32)  # (S=2, 1, 3)
    # argmax >= 0.4 -> surface; 0.35 < 0.4 -> none; tie 0.45/0.45 -> the first surface
    assert assign_by_threshold(probs, 0.4).tolist() == [[0, 255, 0]]
    assert assign_by_threshold(np.zeros((0, 2, 2)), 0.4).tolist() == [[255, 255], [255, 255]]


def test_alignment_scores_formula():
    from segaug.openvocab.sam_clip import alignment_scores, ensemble

    r = torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0]])  # not unit: normalised inside
    t = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    bg = torch.tensor([0.0, 0.0, 2.0])
    s = alignment_scores(r, t, bg, alpha=0.3)
    # mask 1: r = (0, .6, .8): cos with t = (0, .6), cos with bg = .8 -> minus 0.24
    expected = torch.tensor([[1.0, 0.0], [-0.24, 0.6 - 0.24]])
    assert torch.allclose(s, expected, atol=1e-6)
    # ensembling: normalised mean of the unit prompt embeddings, grouped per surface
    e = ensemble(torch.tensor([[2.0, 0.0], [0.0, 5.0], [0.0, 1.0], [0.0, 1.0]]), 2)
    assert torch.allclose(e, torch.tensor([[2**-0.5, 2**-0.5], [0.0, 1.0]]), atol=1e-6)


def test_assign_masks_rule():
    from segaug.openvocab.sam_clip import assign_masks

    masks = np.zeros((4, 1, 5), bool)
    masks[0, 0, 0:3] = True  # best surface 1 (0.5)
    masks[1, 0, 2:5] = True  # best surface 0 (0.7): wins the overlap at pixel 2
    masks[2, 0, 4] = True  # 0.7 too, but mask 1 (lower index) wins the tie at pixel 4
    masks[3, 0, 0] = True  # below min_score: ignored
    scores = np.array([[0.1, 0.5], [0.7, 0.2], [0.2, 0.7], [0.05, 0.0]])
    assert assign_masks(masks, scores, min_score=0.1).tolist() == [[1, 1, 0, 0, 0]]
    assert assign_masks(masks, scores, min_score=0.6).tolist() == [[255, 255, 0, 0, 0]]
    scores[1] = np.nan  # a NaN score never passes: mask 2 takes pixel 4, mask 0 pixel 2
    assert assign_masks(masks, scores, min_score=0.1).tolist() == [[1, 1, 1, 255, 1]]
    assert assign_masks(np.zeros((0, 2, 2), bool), np.zeros((0, 3)), 0.0).tolist() == [[255, 255], [255, 255]]


def test_sam_helpers():
    from segaug.openvocab.sam_clip import masked_crop, nms_masks, passes, point_grid, stability_score

    assert point_grid(2).tolist() == [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    logits = torch.tensor([[[2.0, 2.0, 0.5, -2.0]], [[-2.0, -2.0, -2.0, -2.0]]])
    assert stability_score(logits).tolist() == pytest.approx([2 / 3, 0.0])  # |> 1| / |> -1|; empty -> 0
    assert passes(torch.tensor([0.88, 0.9]), 0.88).tolist() == [False, True]  # strictly above
    assert passes(torch.tensor([-1.0, 0.0]), 0.0).tolist() == [True, True]  # <= 0 disables the filter

    masks = np.zeros((3, 6, 6), bool)
    masks[0, :4, :4] = masks[1, :4, :3] = masks[2, 4:, 4:] = True
    assert nms_masks(masks, np.array([0.8, 0.9, 0.5]), 0.7).tolist() == [1, 2]  # box IoU(0, 1) = 0.75

    image = np.full((4, 6, 3), 9, np.uint8)
    mask = np.zeros((4, 6), bool)
    mask[1:3, 1:5] = True
    mask[1, 1] = False
    crop = masked_crop(image, mask, (1, 2, 3))
    assert crop.shape == (4, 4, 3)  # 2x4 box padded to a square, centred
    assert (crop[0] == (1, 2, 3)).all() and (crop[3] == (1, 2, 3)).all()
    assert crop[1, 0].tolist() == [1, 2, 3] and crop[1, 1].tolist() == [9, 9, 9] and (crop[2] == 9).all()


# ----------------------------------------------------------------------- tiny model sources


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from segaug.generative.tiny import build_tiny
    from segaug.openvocab.tiny import build_tiny_clipseg, build_tiny_sam

    root = tmp_path_factory.mktemp("openvocab")
    return {
        "clipseg": build_tiny_clipseg(root / "clipseg"),
        "sam": build_tiny_sam(root / "sam"),
        "clip": build_tiny("clip", root / "clip"),
    }


@pytest.fixture(scope="module")
def clipseg(tiny):
    from segaug.openvocab.clipseg import ClipSegSurfaces

    return ClipSegSurfaces(str(tiny["clipseg"]), device="cpu")


def test_tiny_clipseg_predicts_a_surface_map(tiny, clipseg):
    from segaug.openvocab.clipseg import ClipSegSurfaces

    image = scene(50, 70)
    smap = clipseg.predict(image, SURFACES)
    check_map(smap, SURFACES, (50, 70))
    assert isinstance(clipseg, SurfaceSource)
    again = ClipSegSurfaces(str(tiny["clipseg"]), device="cpu").predict(image, SURFACES)
    assert np.array_equal(smap.index, again.index)
    probs = clipseg.probabilities(image, SURFACES)
    assert probs.shape == (3, 50, 70) and probs.min() >= 0 and probs.max() <= 1
    assert np.array_equal(smap.index, assign_by_threshold(probs, 0.4))
    everywhere = ClipSegSurfaces(str(tiny["clipseg"]), device="cpu", threshold=0.0).predict(image, SURFACES)
    assert (everywhere.index != NO_SURFACE).all()  # threshold 0: every pixel gets its argmax
    one = clipseg.predict(image, ["road"])  # a single prompt still batches right
    check_map(one, ["road"], (50, 70))


def test_tiny_sam_clip_predicts_a_surface_map(tiny):
    from segaug.openvocab.sam_clip import SamClipSurfaces

    def source(**kw):
        return SamClipSurfaces(str(tiny["sam"]), str(tiny["clip"]), device="cpu", points_per_side=16, **kw)

    image = scene()
    src = source(min_score=-1.0)  # random CLIP: every mask must pass
    masks, iou = src.generator.generate(image)
    assert masks.ndim == 3 and masks.shape[1:] == (64, 48) and len(masks) >= 1 and (iou > 0.88).all()
    smap = src.predict(image, SURFACES)
    check_map(smap, SURFACES, (64, 48))
    assert (smap.index != NO_SURFACE).any()
    again = source(min_score=-1.0).predict(image, SURFACES)
    assert np.array_equal(smap.index, again.index)
    expected = src.scores(image, masks, SURFACES)
    from segaug.openvocab.sam_clip import assign_masks

    assert np.array_equal(smap.index, assign_masks(masks, expected, -1.0))
    assert (source(min_score=10.0).predict(image, SURFACES).index == NO_SURFACE).all()
    # tiny crops are read channels-last: a 4x4x3 red square embeds like a 40x40 one
    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 0] = 200
    small, large = src._image_embeddings([red[:4, :4].copy(), red])
    assert torch.allclose(small, large, atol=1e-5)


def test_sam_grid_covers_non_square_images(tiny):
    """The point grid spans the whole model input for a 32x64 image (SAM 2 resizes to a square)."""
    from segaug.openvocab.sam_clip import Sam2MaskGenerator
    from segaug.openvocab.tiny import SAM_IMAGE_SIZE

    gen = Sam2MaskGenerator(str(tiny["sam"]), device="cpu", points_per_side=4)
    h, w = 32, 64
    points = gen.prompts(gen.points * np.array([w, h]), (h, w))["input_points"].reshape(-1, 2)
    cell = SAM_IMAGE_SIZE / 4
    for axis in (0, 1):  # x and y: first and last cell centres of the square model input
        assert points[:, axis].min() == pytest.approx(cell / 2)
        assert points[:, axis].max() == pytest.approx(SAM_IMAGE_SIZE - cell / 2)
    masks, _ = gen.generate(np.zeros((h, w, 3), np.uint8))
    assert masks.shape[1:] == (h, w)


def test_surface_maps_cache_and_lookup(tmp_path, clipseg):
    root = tmp_path / "data"
    images = {"a": scene(40, 30), "b": scene(30, 40)[::-1].copy()}
    for image_id, image in images.items():
        write_image(root / "images" / f"{image_id}.png", image)
    out = tmp_path / "surfaces"
    paths = surface_maps(clipseg, root, ["b", "a"], ["grass", "water"], out)
    assert paths == [surface_map_path(out, "b"), surface_map_path(out, "a")]
    first = {p: p.read_bytes() for p in paths}
    for image_id, image in images.items():
        cached = SurfaceMap.load(surface_map_path(out, image_id))
        assert np.array_equal(cached.index, clipseg.predict(image, ["grass", "water"]).index)
    surface_maps(clipseg, root, ["b", "a"], ["grass", "water"], out)  # rerun: nothing skipped, same bytes
    assert {p: p.read_bytes() for p in paths} == first

    ct = table("background", "road", "car")
    label = np.zeros((40, 30), np.uint8)
    label[:10] = 1  # road from the label
    label[30:] = 2  # a car: predicted surfaces must not cover it with open_on=["background"]
    names, index = surface_lookup(ct, ["road", "grass"], out, open_on=["background"])("a", images["a"], label)
    assert names == ["road", "grass", "water"]
    assert (index[:10] == 0).all() and (index[30:] == NO_SURFACE).all()
    with pytest.raises(SegaugError, match="cache directory"):
        surface_lookup(ct, ["road", "grass"])
    with pytest.raises(SegaugError, match="rebuild the surface maps"):
        surface_lookup(ct, ["sand"], out)("a", images["a"], label)


def test_hub_id_not_in_offline_cache_is_a_clear_error(tiny):
    from segaug.openvocab.clipseg import ClipSegSurfaces
    from segaug.openvocab.sam_clip import SamClipSurfaces

    with pytest.raises(SegaugError, match="'nobody/no-such-clipseg'"):
        ClipSegSurfaces("nobody/no-such-clipseg", device="cpu")
    with pytest.raises(SegaugError, match="'nobody/no-such-sam2'"):
        SamClipSurfaces("nobody/no-such-sam2", str(tiny["clip"]), device="cpu")
    with pytest.raises(SegaugError, match="'nobody/no-such-clip'"):
        SamClipSurfaces(str(tiny["sam"]), "nobody/no-such-clip", device="cpu")


def test_build_source_checks_names_and_options(tiny):
    with pytest.raises(SegaugError, match="unknown surface source 'mask2former'.*clipseg, sam_clip"):
        source_class("mask2former")
    with pytest.raises(SegaugError, match=r"unknown option\(s\) \['treshold'\]"):
        build_source("clipseg", {"treshold": 0.5})
    src = build_source("clipseg", {"model": str(tiny["clipseg"]), "device": "cpu", "threshold": 0.3})
    assert src.name == "clipseg" and src.threshold == 0.3
    with pytest.raises(SegaugError, match="exactly one"):
        build_source("clipseg", {"model": str(tiny["clipseg"]), "prompt_templates": ["a photo"]})
