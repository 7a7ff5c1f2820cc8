"""Paste stage: compositing, random placement, the pasted dataset, and the two scripts."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from segaug.data.canonical import (
    ClassTable,
    read_image,
    read_label,
    read_split,
    write_image,
    write_label,
)
from segaug.errors import SegaugError
from segaug.paste import (
    Candidate,
    RandomPlacer,
    paste_dataset,
    paste_object,
    transform_object,
)
from segaug.pool import build_pool, load_pool

ROOT = Path(__file__).resolve().parents[1]
TABLE = ClassTable(("background", "car", "road"), ((0, 0, 0), (200, 0, 0), (90, 90, 90)))


def disc_rgba(h=15, w=21, seed=0) -> np.ndarray:
    """An ellipse object with random colours, RGB 0 off the mask (as the pool stores it)."""
    yy, xx = np.mgrid[:h, :w]
    m = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2 <= 1
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgba[~m, :3] = 0
    rgba[..., 3] = m * 255
    return rgba


def scene(H=40, W=50, seed=1):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    lab = np.zeros((H, W), np.uint8)
    lab[H // 2 :] = 2
    lab[0, :] = 255
    return img, lab


# ---------------------------------------------------------------- compose


@pytest.mark.parametrize("blend", ["hard", "feather"])
def test_paste_label_exact_on_mask_and_nothing_else_changes(blend):
    img, lab = scene()
    rgba = disc_rgba()
    out_img, out_lab, mask = paste_object(img, lab, rgba, 1, 10, 5, blend=blend, feather_px=2)
    expected = np.zeros(lab.shape, bool)
    expected[5:20, 10:31] = rgba[..., 3] == 255
    assert (mask == expected).all()
    assert (out_lab[mask] == 1).all()
    assert (out_lab[~mask] == lab[~mask]).all()
    assert (out_img[~mask] == img[~mask]).all()
    assert (img == scene()[0]).all() and (lab == scene()[1]).all()  # inputs untouched
    if blend == "hard":
        assert (out_img[mask] == rgba[..., :3][rgba[..., 3] == 255]).all()


def test_feather_differs_from_hard_only_near_the_edge():
    img, lab = scene()
    rgba = disc_rgba(25, 31)
    hard_img, hard_lab, m = paste_object(img, lab, rgba, 1, 8, 6, blend="hard")
    f_img, f_lab, m2 = paste_object(img, lab, rgba, 1, 8, 6, blend="feather", feather_px=2)
    assert (m == m2).all() and (hard_lab == f_lab).all()
    diff = (hard_img != f_img).any(axis=2)
    assert diff.any()
    assert not (diff & ~m).any()
    # pixels whose nearest off-mask pixel is >= 4 px away (Chebyshev, so >= 4 Euclidean):
    # weight is 1 there (it ramps over feather_px = 2 pixels), so feather equals hard
    deep = ndimage.binary_erosion(m, structure=np.ones((3, 3)), iterations=3)
    assert deep.any() and not (diff & deep).any()


def test_feather_zero_equals_hard():
    img, lab = scene()
    a = paste_object(img, lab, disc_rgba(), 1, 3, 4, blend="hard")[0]
    b = paste_object(img, lab, disc_rgba(), 1, 3, 4, blend="feather", feather_px=0)[0]
    assert (a == b).all()


@pytest.mark.parametrize("x,y", [(-7, -3), (40, 30), (-100, 0), (45, 39)])
def test_paste_clips_at_borders(x, y):
    img, lab = scene()
    rgba = disc_rgba()
    out_img, out_lab, mask = paste_object(img, lab, rgba, 1, x, y, blend="feather")
    P = 150  # padding so every tested position lands inside the canvas
    canvas = np.zeros((40 + 2 * P, 50 + 2 * P), bool)
    canvas[P + y : P + y + 15, P + x : P + x + 21] = rgba[..., 3] == 255
    assert (mask == canvas[P : P + 40, P : P + 50]).all()
    assert (out_lab[mask] == 1).all() and (out_lab[~mask] == lab[~mask]).all()
    assert (out_img[~mask] == img[~mask]).all()


def test_transform_object():
    rgba = disc_rgba(10, 16)
    big = transform_object(rgba, 2.0, False)
    assert big.shape == (20, 32, 4)
    assert set(np.unique(big[..., 3])) <= {0, 255}
    assert (big[..., :3][big[..., 3] == 0] == 0).all()
    small = transform_object(rgba, 0.5, False)
    assert small.shape == (5, 8, 4)
    flipped = transform_object(rgba, 1.0, True)
    assert (flipped == rgba[:, ::-1]).all()
    assert transform_object(rgba, 0.01).shape == (1, 1, 4)
    # premultiplied resize: a uniform-colour object keeps its colour to the edge (no dark fringe)
    flat = rgba.copy()
    flat[..., :3][rgba[..., 3] == 255] = (200, 100, 50)
    up = transform_object(flat, 1.7, True)
    on = up[..., 3] == 255
    assert (np.abs(up[..., :3][on].astype(int) - (200, 100, 50)) <= 1).all()


# ---------------------------------------------------------------- placement


def cand(rgba, scale=1.0, flip=False):
    return Candidate.make("crops/000000.png", 1, "car", rgba, scale, flip)


def test_random_placer_keeps_object_inside():
    img, lab = scene()
    rng = np.random.default_rng(0)
    placer = RandomPlacer()
    xs, ys = set(), set()
    for _ in range(300):
        p = placer.place(rng, img, lab, cand(disc_rgba()))
        assert p.reason == "random" and (p.width, p.height) == (21, 15)
        assert 0 <= p.x <= 50 - 21 and 0 <= p.y <= 40 - 15
        xs.add(p.x)
        ys.add(p.y)
    assert min(xs) == 0 and max(xs) == 29 and min(ys) == 0 and max(ys) == 25


def test_random_placer_shrinks_or_skips_large_objects():
    img, lab = scene()
    big = disc_rgba(30, 60)
    p = RandomPlacer().place(np.random.default_rng(0), img, lab, cand(big, 1.5))
    assert p.reason == "random (shrunk to fit)"
    assert p.width <= 50 and p.height <= 40 and p.scale < 1.5
    assert transform_object(big, p.scale).shape[:2] == (p.height, p.width)
    assert 0 <= p.x <= 50 - p.width and 0 <= p.y <= 40 - p.height
    assert RandomPlacer(min_scale=0.9).place(np.random.default_rng(0), img, lab, cand(big)) is None


def test_unknown_method_lists_known():
    from segaug.paste.methods import get_method

    with pytest.raises(SegaugError, match="unknown paste method 'vlmx'.*random"):
        get_method("vlmx")
    with pytest.raises(SegaugError, match="random placer: min_scale must be positive"):
        RandomPlacer(min_scale=0)


# ---------------------------------------------------------------- dataset


def make_dataset(root: Path, n=4, H=40, W=50):
    TABLE.save(root / "classes.json")
    ids = []
    for i in range(n):
        rng = np.random.default_rng(100 + i)
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        lab = np.zeros((H, W), np.uint8)
        lab[H // 2 :] = 2
        y, x = 3 + i, 5 + 7 * i
        lab[y : y + 8, x : x + 10] = 1  # a car
        lab[y + 2, x + 2] = 255
        write_image(root / "images" / f"im{i}.png", img)
        write_label(root / "labels" / f"im{i}.png", lab)
        ids.append(f"im{i}")
    (root / "sets").mkdir(exist_ok=True)
    (root / "sets" / "train.txt").write_text("".join(f"{i}\n" for i in ids))
    return ids


@pytest.fixture
def data(tmp_path):
    ids = make_dataset(tmp_path / "data")
    build_pool(tmp_path / "data", ids, TABLE, ["car"], 0.05, 10, False, tmp_path / "pool")
    return tmp_path / "data", ids, load_pool(tmp_path / "pool")


def files_bytes(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def run_paste(data, out, seed, **kw):
    root, ids, pool = data
    return paste_dataset(root, ids, pool, RandomPlacer(), seed, out, **kw)


def test_paste_dataset_layout_and_manifest(data, tmp_path):
    root, ids, pool = data
    out = tmp_path / "p"
    s = run_paste(data, out, 0, copies_per_image=2, objects_per_image=(1, 3))
    new = read_split(out / "sets" / "all.txt")
    assert new == [f"{i}_p{c}" for i in ids for c in range(2)]
    assert s["images_written"] == 8
    assert ClassTable.load(out / "classes.json") == TABLE
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == s["pastes"] >= 8
    assert s["per_class_pastes"] == {"car": s["pastes"]}
    recs = [json.loads(line) for line in lines]
    for r in recs:
        assert r["class_name"] == "car" and r["reason"] == "random" and r["blend"] == "feather"
        assert r["crop"].startswith("crops/") and r["source_id"] in ids
        assert 0 <= r["x"] <= 50 - r["width"] and 0 <= r["y"] <= 40 - r["height"]
        assert 0.75 <= r["scale"] <= 1.25
    total = 0
    for oid in new:
        src = oid.rsplit("_p", 1)[0]
        img0, lab0 = read_image(root / "images" / f"{src}.png"), read_label(root / "labels" / f"{src}.png")
        img, lab = read_image(out / "images" / f"{oid}.png"), read_label(out / "labels" / f"{oid}.png")
        changed = lab != lab0
        assert (lab[changed] == 1).all()
        box = np.zeros(lab.shape, bool)
        for r in recs:
            if r["output_id"] == oid:
                box[r["y"] : r["y"] + r["height"], r["x"] : r["x"] + r["width"]] = True
        assert not ((img != img0).any(axis=2) & ~box).any()  # nothing changes outside the pastes
        assert not (changed & ~box).any()
        total += int(((lab == 1) & ~(lab0 == 1)).sum())
    assert s["per_class_pasted_pixels"]["car"] >= total


def test_same_seed_same_bytes_other_seed_differs(data, tmp_path):
    run_paste(data, tmp_path / "a", 7)
    run_paste(data, tmp_path / "b", 7)
    run_paste(data, tmp_path / "c", 8)
    a, b, c = (files_bytes(tmp_path / k) for k in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["manifest.jsonl"] != c["manifest.jsonl"]
    assert any(a[k] != c[k] for k in a if k.startswith("images/"))


def test_hard_blend_and_options(data, tmp_path):
    s = run_paste(data, tmp_path / "h", 0, blend="hard", objects_per_image=(2, 2), flip_prob=1.0)
    recs = [json.loads(line) for line in (tmp_path / "h" / "manifest.jsonl").read_text().splitlines()]
    assert s["pastes"] == len(recs) == 8
    assert all(r["flip"] and r["blend"] == "hard" and r["feather_px"] == 0 for r in recs)


def test_bad_options_are_clear_errors(data, tmp_path):
    with pytest.raises(SegaugError, match="objects_per_image"):
        run_paste(data, tmp_path / "x", 0, objects_per_image=(3, 1))
    with pytest.raises(SegaugError, match="blend"):
        run_paste(data, tmp_path / "x", 0, blend="seamless")
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- scripts


def script(name, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", ["pool.py", "paste.py"])
def test_script_help(name):
    p = script(name, "--help")
    assert p.returncode == 0 and "--dataset-root" in p.stdout


def test_scripts_tiny_run(tmp_path):
    root = tmp_path / "data"
    make_dataset(root, n=3)
    split = root / "sets" / "train.txt"
    p = script(
        "pool.py",
        "--dataset-root",
        root,
        "--split-list",
        split,
        "--out",
        tmp_path / "pool",
        "--classes",
        "cow",
        "--min-area",
        5,
    )
    assert p.returncode == 2 and "unknown class 'cow'" in p.stderr and "Traceback" not in p.stderr
    p = script(
        "pool.py",
        "--dataset-root",
        root,
        "--split-list",
        split,
        "--out",
        tmp_path / "pool",
        "--max-fraction",
        0.2,
        "--min-area",
        5,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "pool" / "pool.json").read_text())["class_source"] == "frequency"
    args = [
        "--dataset-root",
        root,
        "--split-list",
        split,
        "--pool",
        tmp_path / "pool",
        "--seed",
        3,
        "--out",
        tmp_path / "out",
    ]
    p = script("paste.py", "--method", "nope", *args)
    assert p.returncode == 2 and "invalid choice: 'nope'" in p.stderr and "Traceback" not in p.stderr
    p = script("paste.py", "--method", "random", *args, "--options-json", '{"copies": 2, "bogus": 1}')
    assert p.returncode == 2 and "paste.random: unknown option(s) ['bogus']" in p.stderr
    p = script(
        "paste.py",
        "--method",
        "random",
        *args,
        "--options-json",
        '{"copies": 2, "objects_per_image": [1, 2], "blend": "hard"}',
    )
    assert p.returncode == 0, p.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["images_written"] == 6 and s["method"] == "random"
    assert len((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()) == s["pastes"]


def test_sampler_balances_classes_not_objects():
    from segaug.paste import BalancedObjectSampler
    from segaug.pool import PoolObject

    def obj(n, c):
        return PoolObject(f"crops/{n:06d}.png", Path("x"), c, "car", 10, (0, 0, 1, 1), "s", False)

    pool = [obj(0, 1)] + [obj(n, 2) for n in range(1, 10)]  # 1 object of class 1, 9 of class 2
    s = BalancedObjectSampler(pool)
    rng = np.random.default_rng(0)
    draws = [s.draw(rng).class_index for _ in range(4000)]
    assert abs(draws.count(1) / len(draws) - 0.5) < 0.05


def test_paste_same_bytes_for_any_number_of_workers(data, tmp_path):
    kw = dict(copies_per_image=2, objects_per_image=(1, 3))
    run_paste(data, tmp_path / "w1", 5, workers=1, **kw)
    run_paste(data, tmp_path / "w2", 5, workers=2, **kw)
    run_paste(data, tmp_path / "w4", 5, workers=4, **kw)
    a = files_bytes(tmp_path / "w1")
    assert a == files_bytes(tmp_path / "w2") == files_bytes(tmp_path / "w4")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging renamed


def test_paste_output_options(data, tmp_path):
    from PIL import Image

    from segaug.data.canonical import read_image, read_label
    from segaug.paste.output import OutputOptions, encode

    root, ids, pool = data
    fast = run_paste(data, tmp_path / "l1", 2)  # default: PNG level 1, source format (PNG)
    run_paste(data, tmp_path / "l9", 2, output=OutputOptions(compress_level=9))
    assert fast["output"] == {"image_format": "source", "compress_level": 1}
    for sub in ("images", "labels"):
        for p in sorted((tmp_path / "l1" / sub).glob("*.png")):
            q = tmp_path / "l9" / sub / p.name
            assert p.stat().st_size >= q.stat().st_size  # level 9 packs at least as tight
            assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(q)))
            assert Image.open(p).mode == ("L" if sub == "labels" else "RGB")
    # told to: JPEG images, labels stay lossless PNG, and the set still reads back
    run_paste(data, tmp_path / "jpg", 2, output=OutputOptions(image_format="jpg"))
    out = tmp_path / "jpg"
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{i}_p0.jpg" for i in ids]
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"{i}_p0.png" for i in ids]
    b = read_image(tmp_path / "l1" / "images" / f"{ids[0]}_p0.png")
    assert (out / "images" / f"{ids[0]}_p0.jpg").read_bytes() == encode(b, ".jpg")
    assert np.array_equal(
        read_label(out / "labels" / f"{ids[0]}_p0.png"), read_label(tmp_path / "l1" / "labels" / f"{ids[0]}_p0.png")
    )
    # a JPEG source keeps its format by default
    img = read_image(root / "images" / f"{ids[0]}.png")
    (root / "images" / f"{ids[0]}.png").unlink()
    Image.fromarray(img).save(root / "images" / f"{ids[0]}.jpg", quality=95)
    run_paste(data, tmp_path / "src", 2)
    assert (tmp_path / "src" / "images" / f"{ids[0]}_p0.jpg").exists()
    assert (tmp_path / "src" / "images" / f"{ids[1]}_p0.png").exists()
    with pytest.raises(SegaugError, match="compress_level"):
        OutputOptions(compress_level=10)
    with pytest.raises(SegaugError, match="image_format"):
        OutputOptions(image_format="webp")


def test_paste_options_are_declared_once_and_make_the_schema():
    """Each option is declared once (segaug.paste.options / a method's registry line); the
    config schema's paste blocks are made from those declarations, defaults included."""
    from segaug.paste.methods import REGISTRY, get_method
    from segaug.paste.options import SHARED_OPTIONS, Option
    from segaug.workflow.config import load_schema

    paste = load_schema()["properties"]["paste"]
    assert paste["additionalProperties"] is False and list(paste["properties"]) == list(REGISTRY)
    for name, method in REGISTRY.items():
        props = paste["properties"][name]["properties"]
        defaults = method.defaults().to_dict()
        assert set(props) == set(defaults) >= set(SHARED_OPTIONS), name  # every option, no other
        for key, spec in props.items():
            assert spec["default"] == defaults[key], (name, key)
    sig = get_method("sigtor")
    s = sig.parse_options({"copies": 2})  # SIGtor's own defaults apply
    assert (s.copies, s.blend, s.objects_per_image, s.scale_range) == (2, "poisson", (2, 4), (0.5, 2.0))
    assert s.own() == {"jitter": 0.2, "blur_prob": 0.2, "min_area": 20}
    random = get_method("random")
    assert random.parse_options({"feather_px": 1}).feather_px == 1.0  # a float, as before
    assert random.parse_options({}).own() == {}
    with pytest.raises(SegaugError, match=r"paste.random.scale_range must be \[min, max\] with 0 < min"):
        random.parse_options({"scale_range": [2, 1]})
    with pytest.raises(SegaugError, match=r"paste.sigtor.blur_prob must be <= 1, got 2"):
        sig.parse_options({"blur_prob": 2})
    with pytest.raises(SegaugError, match=r"paste.random: unknown option\(s\) \['jitter'\]"):
        random.parse_options({"jitter": 0.1})
    with pytest.raises(SegaugError, match="paste.sigtor: min_area must be of type integer"):
        sig.parse_options({"min_area": "big"})
    # an option of a method's own, in a module without `from __future__ import annotations`
    ns = {}
    exec(
        "from segaug.paste.methods import PasteMethod\nfrom segaug.paste.options import Option\n"
        "m = PasteMethod('toy', 'x:y', options={'rows': Option(3, 'integer', minimum=1)})",
        ns,
    )
    assert ns["m"].parse_options({"rows": 5}).rows == 5
    assert isinstance(Option(1, "integer").schema(), dict)
