"""Prompts (Table 5), Visual Prior Blending, Algorithm 1 (hand-checked), data-balance statistics."""

import math

import numpy as np
import pytest

from segaug.data.canonical import ClassTable, voc_class_table
from segaug.errors import SegaugError
from segaug.generative import balance
from segaug.generative.priors import PriorDetector, blend, index_edges, label_colour_map, label_prior
from segaug.generative.prompts import build_prompt, image_class_names
from segaug.metrics import class_entropy, class_imbalance_ratio


# ------------------------------------------------------------------ prompts
def test_prompt_modes_match_the_paper_examples():
    cap, names = "a room with a table and a laptop on it", ["sofa", "chair", "dining table"]
    assert build_prompt("caption", cap, names) == cap
    assert build_prompt("classes", cap, names) == "a photo of sofa, chair, dining table"
    assert build_prompt("appended", cap, names) == ("a room with a table and a laptop on it; sofa, chair, dining table")
    assert build_prompt("appended", "a pink airplane on the tarmac.", ["aeroplane", "person"]) == (
        "a pink airplane on the tarmac; aeroplane, person"
    )


def test_prompt_edge_cases():
    assert build_prompt("appended", "", ["car"]) == "a photo of car"  # empty caption
    assert build_prompt("appended", "a  street\n at night", []) == "a street at night"
    assert build_prompt("classes", "x", []) == "a photo"
    with pytest.raises(SegaugError, match="unknown prompt mode 'fancy'"):
        build_prompt("fancy", "x", ["car"])


def test_image_class_names_from_the_class_table():
    names = voc_class_table().names
    assert image_class_names([0, 15, 9, 9, 18], names) == ["chair", "person", "sofa"]
    with pytest.raises(SegaugError, match="class index 99"):
        image_class_names([99], names)


# ------------------------------------------------------------------ priors and blending
def test_blend_is_the_weighted_sum_clipped():
    a = np.array([[0, 100, 255, 200]], np.uint8)
    b = np.array([[0, 100, 0, 255]], np.uint8)
    v = blend(a, b, 0.7, 0.9)
    assert v.dtype == np.uint8
    assert v.tolist() == [[0, 160, 178, 255]]  # 0.7*100+0.9*100=160; 0.7*255=178.5->178; clip
    assert blend(a, b, 1.0, 0.0).tolist() == a.tolist()
    with pytest.raises(SegaugError, match="differ in size"):
        blend(a, np.zeros((2, 2), np.uint8))


def test_index_edges_mark_class_boundaries_only():
    lab = np.zeros((8, 8), np.uint8)
    lab[2:6, 2:6] = 7
    lab[0, :] = 255  # ignore counts as class 0: no edge along the top row
    e = index_edges(lab, edge_width=1)
    assert e.dtype == np.uint8 and set(np.unique(e)) <= {0, 255}
    assert e[0].max() == 0 and e[4, 4] == 0 and e[2, 3] == 255
    assert (index_edges(lab, edge_width=3) > 0).sum() > (e > 0).sum()


def test_canny_prior_and_the_palette_label_prior():
    rng = np.random.default_rng(0)
    img = np.zeros((60, 80, 3), np.uint8)
    img[20:40, 20:60] = 200
    lab = np.zeros((60, 80), np.uint8)
    lab[20:40, 20:60] = 1
    lab[0:2] = 255
    det = PriorDetector("canny", canny_low=50, canny_high=100)
    v_img = det(img)
    assert v_img.shape == (60, 80) and v_img.dtype == np.uint8 and v_img.max() == 255
    table = ClassTable(("background", "car"), ((0, 0, 0), (128, 128, 128)))
    colour = label_colour_map(lab, table)
    assert colour[0, 0].tolist() == [0, 0, 0]  # ignore painted as background
    v_lab = label_prior(det, lab, table, "palette")
    assert v_lab[30, 20] == 255 or v_lab[30, 19] == 255  # the object's outline
    assert v_lab[:5].max() == 0  # the ignore band is not an object
    assert label_prior(det, lab, table, "index_edges").max() == 255
    with pytest.raises(SegaugError, match="unknown label prior mode"):
        label_prior(det, lab, table, "depth")
    with pytest.raises(SegaugError, match="unknown visual prior 'hed'"):
        PriorDetector("hed")
    assert rng is not None


# ------------------------------------------------------------------ Algorithm 1
IMGS = {  # image -> classes (0 = background), split-list order
    "a": [0, 1],
    "b": [0, 1, 2],
    "c": [0, 2],
    "d": [0, 1, 2, 3],
    "e": [0, 3],
}


def test_stages_1_and_2_index_and_sort_fewest_classes_first():
    m = balance.class_index(IMGS, exclude=[0])
    assert m == {1: ["a", "b", "d"], 2: ["c", "b", "d"], 3: ["e", "d"]}


def test_stage_3_hand_checked():
    plan = balance.balance_plan(IMGS, n_balance=4, exclude=[0])
    got = [(p["class"], p["source"], p["copy"]) for p in plan]
    # class 1 has 3 images -> 1 more from its first (fewest classes) image "a";
    # class 2 has 3 -> 1 from "c"; class 3 has 2 -> 2 more: "e" then "d" (the walk goes on).
    assert got == [(1, "a", 0), (2, "c", 0), (3, "e", 0), (3, "d", 0)]
    plan = balance.balance_plan(IMGS, n_balance=5, exclude=[0])
    got = [(p["class"], p["source"], p["copy"]) for p in plan]
    # class 3 needs 3: e, d, then the walk starts over at e (its second copy)
    assert got == [(1, "a", 0), (1, "b", 0), (2, "c", 0), (2, "b", 1), (3, "e", 0), (3, "d", 0), (3, "e", 1)]
    ids = [f"{p['source']}_g{p['copy']}" for p in plan]
    assert len(set(ids)) == len(ids)
    assert balance.balance_plan(IMGS, n_balance=2, exclude=[0]) == []
    assert balance.generated_count(IMGS, 5, exclude=[0]) == len(plan)


def test_background_excluded_or_not():
    assert balance.generated_count(IMGS, 5, exclude=[]) == 7 + 0  # background already in 5
    assert balance.generated_count(IMGS, 6, exclude=[]) == 10 + 1


def test_auto_n_balance_makes_d_gen_about_d_origin():
    n = balance.auto_n_balance(IMGS, exclude=[0])
    assert n == 4  # |D_gen|(4) = 4, |D_gen|(5) = 7: 4 is closest to |D_origin| = 5 (tie -> smaller)
    assert balance.auto_n_balance(IMGS, target=7, exclude=[0]) == 5
    with pytest.raises(SegaugError, match="nothing to balance"):
        balance.auto_n_balance({"x": [0]}, exclude=[0])


def test_table4_sizes_grow_linearly_as_in_the_paper():
    # VOC-like: 15 classes below 27 images, 5 above 69: each step of n adds 15 images
    rng = np.random.default_rng(0)
    ids = {}
    k = 0
    for c, n in enumerate([10, 12, 14, 15, 16, 17, 18, 18, 19, 20, 20, 21, 22, 24, 25, 80, 90, 95, 100, 120], 1):
        for _ in range(n):
            ids[f"i{k}"] = [0, c]
            k += 1
    sizes = [balance.generated_count(ids, n, exclude=[0]) for n in (27, 41, 55, 69)]
    assert np.diff(sizes).tolist() == [14 * 15] * 3
    assert rng is not None


def test_uniform_plan_and_make_plan_statistics():
    names = ["background", "cat", "dog", "cow"]
    p = balance.make_plan(IMGS, "uniform-2", names, ["background"])
    assert p["num_generated"] == 10 and p["n_balance"] is None
    assert [e["copy"] for e in p["entries"][:6]] == [0, 0, 0, 0, 0, 1]
    p = balance.make_plan(IMGS, "balance-5", names, ["background"])
    assert p["n_balance"] == 5 and p["num_generated"] == 7
    assert p["images_per_class_origin"] == [5, 3, 3, 2]
    # generated a, b, c, b, e, d, e: their classes all count in D_final
    assert p["images_per_class_final"] == [12, 3 + 4, 3 + 4, 2 + 3]
    assert p["entropy_final"] > p["entropy_origin"]
    with pytest.raises(SegaugError, match="unknown plan"):
        balance.make_plan(IMGS, "greedy-3", names)


# ------------------------------------------------------------------ statistics
def test_entropy_and_cir_definitions():
    assert class_entropy([5, 5, 5, 5]) == pytest.approx(2.0)
    assert class_entropy([10, 0, 0]) == 0.0
    assert class_entropy([1, 3]) == pytest.approx(-(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)))
    assert class_imbalance_ratio([5, 10, 20]) == 0.25
    with pytest.raises(SegaugError):
        class_entropy([0, 0])


def test_voc_like_counts_give_values_of_the_papers_order():
    # images per class of VOC 2012 train-seg (1464): entropy near the paper's VOC7 3.944 and
    # below log2(20) = 4.32; balancing minority classes raises entropy
    voc12 = [88, 65, 105, 78, 87, 78, 128, 131, 148, 64, 82, 121, 68, 81, 442, 82, 63, 93, 83, 84]
    h, r = class_entropy(voc12), class_imbalance_ratio(voc12)
    assert 3.9 < h < 4.32 and 0.1 < r < 0.3
    balanced = [max(c, 100) for c in voc12]
    assert class_entropy(balanced) > h
