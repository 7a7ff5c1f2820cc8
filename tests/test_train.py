"""Training: transforms, data stream, losses, model factory, end-to-end training and resume."""

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segaug.data.canonical import ClassTable, load_pair, samples, write_image, write_label
from segaug.errors import SegaugError
from segaug.train.data import SegDataset, StreamSampler
from segaug.train.losses import class_weights_from_counts, create_loss
from segaug.train.models import create_model, output_stride, pad_multiple, predict_whole
from segaug.train.module import poly_lr
from segaug.train.transforms import (
    TrainTransform,
    ValTransform,
    normalize,
    photometric_distortion,
    random_crop,
    rescale_size,
    resize_keep_ratio,
    to_model_input,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = {"arch": "PSPNet", "encoder": "tu-test_resnet", "encoder_weights": None}


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- transforms


def test_rescale_size_is_mmcv_keep_ratio():
    # VOC-sized image into (2048, 512): the short side is the bound
    assert rescale_size(500, 375, (2048, 512)) == (683, 512)
    assert rescale_size(375, 500, (2048, 512)) == (512, 683)
    assert rescale_size(64, 48, (160, 120)) == (160, 120)


def test_train_transform_shapes_and_padding():
    tf = TrainTransform(crop_size=(48, 40), base_size=(32, 24), ratio_range=(0.5, 0.5))
    label = np.ones((30, 40), np.uint8)
    img, y, hw = tf(_image(30, 40), label, np.random.default_rng(0))
    assert img.shape == (48, 40, 3) and img.dtype == np.uint8 and hw == (12, 16)
    assert y.shape == (48, 40) and y.dtype == np.uint8
    # resized to fit (16, 12) -> 16x12 content (w x h), the rest is padding
    assert (y[:12, :16] == 1).all()
    assert (y[12:, :] == 255).all() and (y[:, 16:] == 255).all()
    # on the device: normalised like normalize(), 0 (the mean colour) in the padded area
    x = to_model_input(torch.from_numpy(img)[None], torch.tensor([hw]))[0].numpy()
    assert x.shape == (3, 48, 40) and x.dtype == np.float32 and x.flags.c_contiguous
    assert (x[:, 12:, :] == 0).all() and (x[:, :, 16:] == 0).all()
    assert np.array_equal(x[:, :12, :16], normalize(img[:12, :16]))


def test_train_transform_is_a_function_of_the_generator():
    tf = TrainTransform(crop_size=(32, 32), base_size=(64, 48))
    img, lab = _image(48, 64), np.random.default_rng(1).integers(0, 3, (48, 64)).astype(np.uint8)
    a = tf(img, lab, np.random.default_rng([7, 3]))
    b = tf(img, lab, np.random.default_rng([7, 3]))
    c = tf(img, lab, np.random.default_rng([7, 4]))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_cat_max_ratio_retries_crops():
    label = np.zeros((100, 100), np.uint8)
    label[:, :50] = 1  # a crop of width 40 is "balanced" only if it straddles column 50 well

    def ok(crop):
        _, cnt = np.unique(crop, return_counts=True)
        return len(cnt) > 1 and cnt.max() / cnt.sum() < 0.75

    img = np.zeros((100, 100, 3), np.uint8)
    rate = {}
    for ratio in (0.75, 1.0):
        hits = [ok(random_crop(img, label, np.random.default_rng(s), (40, 40), ratio)[1]) for s in range(200)]
        rate[ratio] = np.mean(hits)
    assert rate[0.75] > 0.9 and rate[1.0] < 0.5
    # a single-class label can never satisfy it: the crop is still returned (mmseg fallback)
    _, crop = random_crop(img, np.zeros((100, 100), np.uint8), np.random.default_rng(0), (40, 40))
    assert crop.shape == (40, 40)
    # ignore pixels are not counted
    lab = np.full((100, 100), 255, np.uint8)
    lab[:, :50] = 1
    lab[:, 50:52] = 0
    _, crop = random_crop(img, lab, np.random.default_rng(0), (40, 40), 0.75)
    assert crop.shape == (40, 40)


def test_photometric_distortion_keeps_uint8_and_is_seeded():
    img = _image(20, 30)
    a = photometric_distortion(img, np.random.default_rng(5))
    b = photometric_distortion(img, np.random.default_rng(5))
    assert a.dtype == np.uint8 and a.shape == img.shape and np.array_equal(a, b)
    changed = [not np.array_equal(photometric_distortion(img, np.random.default_rng(s)), img) for s in range(10)]
    assert any(changed)


def test_val_transform_resizes_image_not_label():
    x, y, hw = ValTransform((64, 64))(_image(30, 40), np.zeros((30, 40), np.uint8))
    assert x.shape == (48, 64, 3) and y.shape == (30, 40) and hw == (48, 64)
    x, y, hw = ValTransform()(_image(30, 40), np.zeros((30, 40), np.uint8))
    assert x.shape == (30, 40, 3) and x.dtype == np.uint8


# ---------------------------------------------------------------- data set and stream


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """10 images 64x64: a red rectangle (class 1) on blue (class 0), with noise."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for i in range(10):
        lab = np.zeros((64, 64), np.uint8)
        y, x = rng.integers(0, 32, 2)
        h, w = rng.integers(16, 32, 2)
        lab[y : y + h, x : x + w] = 1
        lab[:2, :] = 255  # an ignored border row
        img = np.where(lab[..., None] == 1, [200, 40, 40], [40, 60, 180]).astype(float)
        img += rng.normal(0, 20, img.shape)
        write_image(root / "images" / f"im{i}.png", np.clip(img, 0, 255).astype(np.uint8))
        write_label(root / "labels" / f"im{i}.png", lab)
    ClassTable(("bg", "fg"), ((0, 0, 255), (255, 0, 0))).save(root / "classes.json")
    (root / "train.txt").write_text("".join(f"im{i}\n" for i in range(8)))
    (root / "val.txt").write_text("im8\nim9\n")
    return root


def test_stream_is_a_function_of_seed_and_position(shapes):
    s = samples(shapes, [f"im{i}" for i in range(8)])
    tf = TrainTransform(crop_size=(32, 32), base_size=(64, 64))
    a, b = SegDataset(s, 2, tf, seed=3), SegDataset(s, 2, tf, seed=3)
    for g in (0, 5, 13, 100):
        xa, ya, ga, _ = a[g]
        xb, yb, gb, _ = b[g]
        assert ga == gb == g and torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[1][0], a[2][0])
    assert not torch.equal(a[1][0], SegDataset(s, 2, tf, seed=4)[1][0])
    # each pass over the data is a permutation, and passes differ
    p0 = [a.sample_index(g) for g in range(8)]
    p1 = [a.sample_index(g) for g in range(8, 16)]
    assert sorted(p0) == sorted(p1) == list(range(8)) and p0 != p1
    # the sampler yields the positions of the epoch Lightning announces
    sampler = StreamSampler(steps_per_epoch=3, batch_size=4)
    assert list(sampler) == list(range(12))
    sampler.set_epoch(2)
    assert list(sampler) == list(range(24, 36)) and len(sampler) == 12


# ---------------------------------------------------------------- losses


def _logits_target(seed=0, c=3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, c, 6, 5, generator=g)
    target = torch.randint(0, c, (2, 6, 5), generator=g)
    target[0, :2] = 255
    return logits, target


def test_ce_ignores_255():
    logits, target = _logits_target()
    loss = create_loss("ce", 3)(logits, target)
    assert torch.allclose(loss, F.cross_entropy(logits, target, ignore_index=255))
    other = logits.clone()
    other[0, :, :2] = 100 * torch.randn(3, 2, 5)  # change only ignored pixels
    assert torch.allclose(create_loss("ce", 3)(other, target), loss)
    all_ignored = torch.full_like(target, 255)
    assert create_loss("ce", 3)(logits, all_ignored).item() == 0.0
    # MMSegmentation's default normalisation: divide by all pixels, ignored ones included
    mm = create_loss("ce", 3, avg_non_ignore=False)(logits, target)
    ref = F.cross_entropy(logits, target, ignore_index=255, reduction="sum") / target.numel()
    assert torch.allclose(mm, ref)


def test_focal_gamma0_is_ce_and_down_weights_easy_pixels():
    logits, target = _logits_target(1)
    ce = create_loss("ce", 3)(logits, target)
    assert torch.allclose(create_loss("focal", 3, gamma=0.0)(logits, target), ce)
    assert create_loss("focal", 3, gamma=2.0)(logits, target) < ce
    w = [0.5, 2.0, 1.0]
    ref = F.cross_entropy(logits, target, weight=torch.tensor(w), ignore_index=255)
    assert torch.allclose(create_loss("weighted_ce", 3, class_weights=w)(logits, target), ref)
    assert torch.allclose(create_loss("focal", 3, class_weights=w, gamma=0)(logits, target), ref)


def test_loss_errors():
    with pytest.raises(SegaugError, match="unknown name"):
        create_loss("dice", 3)
    with pytest.raises(SegaugError, match="needs class_weights"):
        create_loss("weighted_ce", 3)
    with pytest.raises(SegaugError, match="2 class weights"):
        create_loss("ce", 3, class_weights=[1, 2])
    with pytest.raises(SegaugError, match="unknown option"):
        create_loss("ce", 3, gamma=2)


def test_class_weights_from_counts():
    np.testing.assert_allclose(class_weights_from_counts([100, 300, 0], "inverse"), [2.0, 2 / 3, 1.0])
    np.testing.assert_allclose(class_weights_from_counts([10, 20, 40], "median"), [2.0, 1.0, 0.5])
    np.testing.assert_allclose(class_weights_from_counts([5, 5], "inverse"), [1.0, 1.0])
    with pytest.raises(SegaugError, match="unknown mode"):
        class_weights_from_counts([1, 2], "sqrt")


def test_poly_lr_matches_mmseg():
    assert poly_lr(0, 100, 0.01) == pytest.approx(0.01)
    assert poly_lr(100, 100, 0.01) == pytest.approx(1e-4)
    assert poly_lr(50, 100, 0.01) == pytest.approx((0.01 - 1e-4) * 0.5**0.9 + 1e-4)


# ---------------------------------------------------------------- models


@pytest.mark.parametrize(
    "cfg, stride",
    [
        ({"arch": "DeepLabV3Plus", "encoder": "resnet18", "encoder_weights": None}, 16),
        ({"arch": "PSPNet", "encoder": "resnet18", "encoder_weights": None}, 8),
        (
            {"arch": "DeepLabV3Plus", "encoder": "tu-test_resnet", "encoder_weights": None, "encoder_output_stride": 8},
            8,
        ),
        (
            {
                "arch": "pspnet",
                "encoder": "resnet18",
                "encoder_weights": None,
                "encoder_depth": 5,
                "encoder_output_stride": 8,
            },
            8,
        ),
    ],
)
def test_model_factory_forward(cfg, stride):
    model = create_model(cfg, 5).eval()
    assert output_stride(model) == stride == pad_multiple(model)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5, 64, 64)
        # whole-image inference on a size that is not a stride multiple
        assert predict_whole(model, torch.randn(1, 3, 50, 70), stride).shape == (1, 5, 50, 70)
        assert predict_whole(model, torch.randn(1, 3, 32, 32), stride, (50, 70)).shape == (
            1,
            5,
            50,
            70,
        )


def test_model_factory_errors():
    with pytest.raises(SegaugError, match="unknown arch"):
        create_model({"arch": "NoSuchNet"}, 2)
    with pytest.raises(SegaugError, match="unknown key"):
        create_model({"arch": "PSPNet", "encoder": "resnet18", "encoder_weights": None, "dropout": 0.1}, 2)
    with pytest.raises(SegaugError, match="encoder"):
        create_model({"arch": "PSPNet", "encoder": "resnet9000", "encoder_weights": None}, 2)
    # tests run offline (HF_HUB_OFFLINE=1) and nothing is cached: a clear, actionable error
    with pytest.raises(SegaugError, match=r"'resnet18'.*encoder_weights: null"):
        create_model({"arch": "PSPNet", "encoder": "resnet18", "encoder_weights": "imagenet"}, 2)


# ---------------------------------------------------------------- end to end


TRAIN_CFG = {
    "steps": 16,
    "val_interval": 4,
    "batch_size": 4,
    "crop_size": [48, 48],
    "base_size": [64, 64],
    "ratio_range": [0.75, 1.25],
    "lr": 0.02,
    "threads": 1,
    "num_workers": 0,
}
RUN = {
    "dataset": "shapes",
    "split": "all",
    "model": "tiny_psp",
    "trainset": "origin",
    "loss": "ce",
    "seed": 0,
}


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(shapes, out, **extra):
    args = [
        "--dataset-root",
        str(shapes),
        "--train-list",
        str(shapes / "train.txt"),
        "--val-list",
        str(shapes / "val.txt"),
        "--model-json",
        json.dumps(TINY),
        "--train-json",
        json.dumps(TRAIN_CFG),
        "--loss-json",
        '{"name": "ce"}',
        "--seed",
        "0",
        "--run-json",
        json.dumps(RUN),
        "--out-model",
        str(out / "model.pt"),
        "--out-curve",
        str(out / "curve.csv"),
        "--state-dir",
        str(out / "state"),
        "--device",
        "cpu",
    ]
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", v]
    return args


@pytest.fixture(scope="module")
def straight(shapes, tmp_path_factory):
    """An uninterrupted run, through scripts/train.py."""
    out = tmp_path_factory.mktemp("straight")
    _script("train").main(_args(shapes, out))
    return out


def test_training_learns_and_writes_model_and_curve(straight):
    model = torch.load(straight / "model.pt", weights_only=True)
    assert model["model_cfg"] == TINY and model["class_names"] == ["bg", "fg"]
    assert model["num_classes"] == 2 and model["steps"] == 16 and model["run"] == RUN
    rows = list(csv.DictReader((straight / "curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16]
    assert set(rows[0]) == {"step", "val_miou", "val_pixel_acc", "lr"}
    assert float(rows[0]["lr"]) > float(rows[-1]["lr"])  # poly decay
    # chance (all background) is ~0.4 mIoU here; 16 steps reach ~0.85 (0.73-0.89 over seeds)
    assert float(rows[-1]["val_miou"]) > 0.65
    assert model["best"]["miou"] == pytest.approx(max(float(r["val_miou"]) for r in rows), abs=1e-6)
    assert not (straight / "state").exists()  # the finished run's checkpoint is removed


class Kill(__import__("lightning").Callback):
    """Simulates a job killed in the middle of the second epoch."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 6:
            raise RuntimeError("killed")


def test_resume_gives_the_same_model(shapes, straight, tmp_path):
    from segaug.train.loop import train

    table = ClassTable.load(shapes / "classes.json")
    tr = samples(shapes, [f"im{i}" for i in range(8)])
    va = samples(shapes, ["im8", "im9"])
    kw = dict(
        out_model=tmp_path / "model.pt",
        out_curve=tmp_path / "curve.csv",
        state_dir=tmp_path / "state",
        device="cpu",
        run_info=RUN,
    )
    with pytest.raises(RuntimeError, match="killed"):
        train(tr, va, table, TINY, TRAIN_CFG, {"name": "ce"}, 0, callbacks=[Kill()], **kw)
    assert not (tmp_path / "model.pt").exists()
    assert torch.load(tmp_path / "state" / "last.ckpt", weights_only=False)["global_step"] == 4
    # resumed with data-loading workers: the stream does not depend on them
    summary = train(tr, va, table, TINY, {**TRAIN_CFG, "num_workers": 2}, {"name": "ce"}, 0, **kw)
    assert summary["resumed_from"] == str(tmp_path / "state" / "last.ckpt")

    a = torch.load(straight / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "model.pt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert a["history"] == b["history"]  # the curve survives the resume, point for point
    assert (straight / "curve.csv").read_text() == (tmp_path / "curve.csv").read_text()

    assert not (tmp_path / "state" / "last.ckpt").exists()

    # a forced rerun of a finished run trains from scratch, to the same model
    (tmp_path / "model.pt").unlink()
    summary = train(tr, va, table, TINY, TRAIN_CFG, {"name": "ce"}, 0, **kw)
    assert summary["resumed_from"] is None
    c = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], c["state_dict"][k]) for k in a["state_dict"])

    # a checkpoint of another configuration is set aside, not resumed
    other = {**TRAIN_CFG, "steps": 4}
    with pytest.raises(RuntimeError, match="killed"):
        train(tr, va, table, TINY, TRAIN_CFG, {"name": "ce"}, 0, callbacks=[Kill()], **kw)
    summary = train(tr, va, table, TINY, other, {"name": "ce"}, 0, **kw)
    assert summary["resumed_from"] is None and (tmp_path / "state" / "last.stale").exists()


def test_evaluate_model_file(shapes, straight, tmp_path):
    from segaug.train.evaluate import evaluate

    table = ClassTable.load(shapes / "classes.json")
    va = samples(shapes, ["im8", "im9"])
    conf, sc = evaluate(straight / "model.pt", va, table, device="cpu")
    model = torch.load(straight / "model.pt", weights_only=True)
    assert conf.sum() == 2 * 62 * 64  # two ignored rows per image
    assert sc["miou"] == pytest.approx(model["history"][-1]["val_miou"])
    _, sc2 = evaluate(straight / "model.pt", va, table, device="cpu", test_scale=(96, 96))
    assert 0 <= sc2["miou"] <= 1
    wrong = ClassTable(("x", "y"), ((0, 0, 0), (1, 1, 1)))
    with pytest.raises(SegaugError, match="differ"):
        evaluate(straight / "model.pt", va, wrong, device="cpu")

    # the script: metrics.json with the scores and the run, confusion.csv
    _script("evaluate").main(
        [
            "--dataset-root",
            str(shapes),
            "--val-list",
            str(shapes / "val.txt"),
            "--model",
            str(straight / "model.pt"),
            "--out-metrics",
            str(tmp_path / "m.json"),
            "--out-confusion",
            str(tmp_path / "c.csv"),
            "--device",
            "cpu",
        ]
    )
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["run"] == RUN and m["miou"] == pytest.approx(sc["miou"]) and set(m["iou"]) == {"bg", "fg"}
    assert (tmp_path / "c.csv").read_text().splitlines()[0] == "gt\\pred,bg,fg"


def test_train_config_errors(shapes, tmp_path):
    from segaug.train.run import resolve_train_cfg

    with pytest.raises(SegaugError, match="stepz"):
        resolve_train_cfg({"stepz": 3})
    with pytest.raises(SegaugError, match="multiple of val_interval"):
        resolve_train_cfg({"steps": 10, "val_interval": 4})
    with pytest.raises(SystemExit):  # through the script: one line, exit status 2
        from segaug.cli import run

        run(_script("train").main, _args(shapes, tmp_path, train_json='{"steps": 4, "bogus": 1}'))


# ---------------------------------------------------------------- the fast pipeline


def _reference_pipeline(tf, image, label, rng):
    """The pipeline as it was before the uint8/bincount/LUT rewrite: float32 CHW normalised in
    the worker, np.unique crop check, float photometric conversion (the reference the fast
    path must reproduce)."""
    import cv2

    from segaug.train.transforms import _crop_bbox, random_flip, random_resize

    def convert(img, alpha=1.0, beta=0.0):
        return np.clip(img.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)

    image, label = random_resize(image, label, rng, tf.base_size, tf.ratio_range)
    bbox = _crop_bbox(label.shape, tf.crop_size, rng)
    for _ in range(10):
        y1, y2, x1, x2 = bbox
        values, cnt = np.unique(label[y1:y2, x1:x2], return_counts=True)
        cnt = cnt[values != 255]
        if len(cnt) > 1 and cnt.max() / cnt.sum() < tf.cat_max_ratio:
            break
        bbox = _crop_bbox(label.shape, tf.crop_size, rng)
    y1, y2, x1, x2 = bbox
    image, label = random_flip(image[y1:y2, x1:x2], label[y1:y2, x1:x2], rng, tf.flip_prob)
    img = np.ascontiguousarray(image)
    if rng.integers(2):
        img = convert(img, beta=rng.uniform(-32, 32))
    mode = rng.integers(2)
    if mode == 1 and rng.integers(2):
        img = convert(img, alpha=rng.uniform(0.5, 1.5))
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[:, :, 1] = convert(hsv[:, :, 1], alpha=rng.uniform(0.5, 1.5))
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        shift = int(rng.integers(-18, 18))
        hsv[:, :, 0] = ((hsv[:, :, 0].astype(np.int32) + shift) % 180).astype(np.uint8)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if mode == 0 and rng.integers(2):
        img = convert(img, alpha=rng.uniform(0.5, 1.5))
    x = normalize(img)
    h, w = label.shape
    ph, pw = max(tf.crop_size[0] - h, 0), max(tf.crop_size[1] - w, 0)
    x = np.pad(x, ((0, 0), (0, ph), (0, pw)), constant_values=0.0)
    label = np.pad(label, ((0, ph), (0, pw)), constant_values=255)
    return x, label.astype(np.int64)


def _blobs(seed, h=90, w=120):
    rng = np.random.default_rng(seed)
    lab = np.zeros((h, w), np.uint8)
    for c in range(1, 4):
        y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
        lab[y : y + rng.integers(10, 40), x : x + rng.integers(10, 50)] = c
    lab[rng.random((h, w)) < 0.02] = 255
    img = cv2_blur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return img, lab


def cv2_blur(img):
    import cv2

    return cv2.GaussianBlur(img, (5, 5), 1.5)


def test_fast_pipeline_has_the_same_augmentation_distribution():
    """Fixed seeds: the uint8 pipeline + on-device normalisation reproduces the reference
    pipeline exactly (crop windows, flips, photometric changes, normalised floats), so the
    statistics of crops and of photometric changes are the same as before."""
    tf = TrainTransform(crop_size=(64, 64), base_size=(160, 60), ratio_range=(0.5, 2.0))
    stats = {"new": [], "ref": []}
    for seed in range(60):
        img, lab = _blobs(seed % 6)
        u8, y, hw = tf(img, lab, np.random.default_rng([seed, 1]))
        x = to_model_input(torch.from_numpy(u8)[None], torch.tensor([hw]))[0].numpy()
        xr, yr = _reference_pipeline(tf, img, lab, np.random.default_rng([seed, 1]))
        assert np.array_equal(x, xr) and np.array_equal(y.astype(np.int64), yr), seed
        for key, (xx, yy) in (("new", (x, y)), ("ref", (xr, yr))):
            valid = yy != 255
            counts = np.bincount(yy[valid].ravel(), minlength=4)
            stats[key].append((valid.sum(), counts.max() / max(counts.sum(), 1), float(xx.mean()), float(xx.std())))
    np.testing.assert_array_equal(np.array(stats["new"]), np.array(stats["ref"]))
    # and the pipeline did vary: several crop sizes, photometric changes of both signs
    assert len({s[0] for s in stats["new"]}) > 5 and np.std([s[2] for s in stats["new"]]) > 0.05


def test_channels_last_input_equals_contiguous():
    img = torch.from_numpy(_image(8, 10))[None].repeat(2, 1, 1, 1)
    hw = torch.tensor([[8, 10], [5, 7]])
    a = to_model_input(img, hw)
    b = to_model_input(img, hw, channels_last=True)
    assert a.is_contiguous() and b.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b) and (a[1, :, 5:] == 0).all() and (a[1, :, :, 7:] == 0).all()


def test_batched_evaluation_gives_the_same_confusion_as_image_by_image(shapes, straight, tmp_path):
    """Batches of one image size (with workers) give exactly the confusion matrix of the
    image-by-image loop with worker-side normalisation (the evaluation before its rework)."""
    from segaug.metrics import ConfusionMeter
    from segaug.train.evaluate import evaluate, load_model, size_batches

    root = tmp_path / "mixed"
    rng = np.random.default_rng(1)
    ids = []
    for i, (h, w) in enumerate([(64, 64), (48, 80), (64, 64), (48, 80), (40, 56), (64, 64), (48, 80)]):
        lab = np.zeros((h, w), np.uint8)
        lab[h // 4 : h // 2 + 5, w // 3 : w // 3 + 17 + i] = 1
        lab[0, :] = 255
        img = np.where(lab[..., None] == 1, [200, 40, 40], [40, 60, 180]).astype(float)
        img = np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8)
        write_image(root / "images" / f"m{i}.png", img)
        write_label(root / "labels" / f"m{i}.png", lab)
        ids.append(f"m{i}")
    table = ClassTable.load(shapes / "classes.json")
    va = samples(root, ids)
    model, _ = load_model(straight / "model.pt")
    for scale in (None, (96, 96)):
        ref = ConfusionMeter(2)
        for s in va:
            img, lab = load_pair(s)
            if scale is not None:
                img, _ = resize_keep_ratio(img, None, scale)
            x = torch.from_numpy(normalize(img))[None]
            with torch.no_grad():
                logits = predict_whole(model, x, pad_multiple(model), out_size=lab.shape)
            ref.update(logits.argmax(1)[0].numpy(), lab)
        for batch, workers in ((1, 0), (3, 0), (8, 2)):
            conf, _ = evaluate(
                straight / "model.pt", va, table, device="cpu", test_scale=scale, batch_size=batch, num_workers=workers
            )
            assert np.array_equal(conf, ref.conf), (scale, batch, workers)
    assert size_batches([(1, 2), (3, 4), (1, 2), (1, 2)], 2) == [[0, 2], [3], [1]]


def test_channels_last_and_compile_give_the_same_loss_curve(shapes, tmp_path, monkeypatch):
    """The speed options change memory layout / graph execution, not the maths: the loss
    curve matches the default run to float tolerance on CPU. (compile runs with the
    aot_eager backend here: inductor's C++ code generation takes minutes on a CPU runner.)"""
    import lightning as L

    from segaug.train.loop import train

    compile_ = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compile_(self, backend="aot_eager"))

    class Losses(L.Callback):
        def __init__(self):
            self.values = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.values.append(float(loss))

    table = ClassTable.load(shapes / "classes.json")
    tr, va = samples(shapes, [f"im{i}" for i in range(8)]), samples(shapes, ["im8", "im9"])
    cfg = {**TRAIN_CFG, "steps": 8}
    curves = {}
    for name, perf in (
        ("default", {}),
        ("channels_last", {"channels_last": True}),
        ("compile", {"compile": True, "channels_last": True}),
    ):
        cb = Losses()
        out = tmp_path / name
        train(
            tr,
            va,
            table,
            TINY,
            {**cfg, **perf},
            {"name": "ce"},
            0,
            out / "model.pt",
            out / "curve.csv",
            out / "state",
            device="cpu",
            callbacks=[cb],
        )
        curves[name] = cb.values
    assert len(curves["default"]) == 8
    for name in ("channels_last", "compile"):
        # the first steps agree to float rounding; rounding differences then grow a little
        np.testing.assert_allclose(curves[name][:3], curves["default"][:3], rtol=1e-5)
        np.testing.assert_allclose(curves[name], curves["default"], rtol=1e-2)


# ---------------------------------------------------------------- the R50-D8 recipe on smp

# mmseg 1.2.2, configs/{deeplabv3plus,pspnet}/*_r50-d8_4xb4-20k_voc12aug-512x512.py built with
# 21 classes (tests/test_mmseg.py instantiates them when the mmseg env is present)
MMSEG_R50_D8 = {
    "deeplabv3plus_r50": {"backbone": 23527264, "decode_head": 17698949, "auxiliary_head": 2365205},
    "pspnet_r50": {"backbone": 23527264, "decode_head": 23084565, "auxiliary_head": 2365205},
}


def _nparams(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", sorted(MMSEG_R50_D8))
def test_paper_models_are_r50_v1c_d8_with_aux_head(name):
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["models"][name]
    cfg = {k: v for k, v in cfg.items() if k != "train"}
    assert cfg["encoder"] == "tu-resnet50c" and cfg["aux_head"] is True
    assert cfg["head"] == "mmseg"
    model = create_model({**cfg, "encoder_weights": None}, 21)
    ref = MMSEG_R50_D8[name]
    enc, aux, total = _nparams(model.encoder), _nparams(model.aux_head), _nparams(model)
    print(
        f"{name}: smp {total} (encoder {enc}, decoder+head {total - enc - aux}, aux {aux}); "
        f"mmseg {sum(ref.values())} ({ref})"
    )
    # to the parameter, part by part
    assert (enc, total - enc - aux, aux) == (ref["backbone"], ref["decode_head"], ref["auxiliary_head"])
    assert total == sum(ref.values())
    # smp's own decoders are the same designs, narrower (the table in docs/fidelity.md)
    smp_dec = create_model(
        {
            **cfg,
            "encoder_weights": None,
            "head": "smp",
            **({"encoder_depth": 5, "upsampling": 8} if "psp" in name else {}),
        },
        21,
    )
    print(f"{name} with smp's decoder: {_nparams(smp_dec)}")
    assert output_stride(model) == 8
    # the deep stem of V1c: three 3x3 convolutions, 32-32-64 channels
    convs = [
        m for n, m in model.encoder.named_modules() if n.startswith("model.conv1.") and isinstance(m, torch.nn.Conv2d)
    ]
    assert [(c.kernel_size, c.out_channels) for c in convs] == [((3, 3), 32), ((3, 3), 32), ((3, 3), 64)]


AUX = {
    "arch": "DeepLabV3Plus",
    "encoder": "tu-test_resnet",
    "encoder_weights": None,
    "encoder_output_stride": 8,
    "aux_head": {"channels": 16},
}


@pytest.mark.parametrize("arch", ["DeepLabV3Plus", "PSPNet"])
def test_mmseg_heads_on_an_smp_encoder(arch):
    cfg = {
        "arch": arch,
        "encoder": "tu-test_resnet",
        "encoder_weights": None,
        "head": "mmseg",
        "decoder_channels": 16,
        "aux_head": {"channels": 8},
    }
    model = create_model(cfg, 3)
    assert pad_multiple(model) == 8
    main, aux = model.train()(torch.randn(2, 3, 32, 32))
    assert main.shape == (2, 3, 32, 32) and aux.shape == (2, 3, 4, 4)
    with torch.no_grad():
        assert predict_whole(model.eval(), torch.randn(1, 3, 30, 35), 8).shape == (1, 3, 30, 35)
    with pytest.raises(SegaugError, match="head: mmseg is for DeepLabV3Plus and PSPNet"):
        create_model({**cfg, "arch": "Unet"}, 3)
    with pytest.raises(SegaugError, match=r"with head: mmseg the keys are.*\['upsampling'\]"):
        create_model({**cfg, "upsampling": 8}, 3)
    with pytest.raises(SegaugError, match="head must be smp or mmseg"):
        create_model({**cfg, "head": "mmsegmentation"}, 3)


def test_aux_head_is_training_only():
    from segaug.train.models import aux_head_cfg, aux_loss

    model = create_model(AUX, 3)
    assert model.aux_weight == 0.4 and pad_multiple(model) == 8
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
    main, aux = model.train()(x)
    assert main.shape == (2, 3, 32, 32) and aux.shape == (2, 3, 4, 4)
    ce = create_loss("ce", 3)
    up = F.interpolate(aux, size=(32, 32), mode="bilinear", align_corners=False)
    with torch.no_grad():
        want = float(ce(main, y) + 0.4 * ce(up, y))
        assert float(aux_loss(ce, (main, aux), y, 0.4)) == pytest.approx(want)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 3, 32, 32)
        assert predict_whole(model, torch.randn(1, 3, 30, 35), 8).shape == (1, 3, 30, 35)
    assert aux_head_cfg(True) == {"channels": 256, "weight": 0.4, "dropout": 0.1}
    assert aux_head_cfg(False) is None
    with pytest.raises(SegaugError, match="aux_head"):
        create_model({**AUX, "aux_head": {"weigth": 1}}, 3)


def test_aux_head_trains_resumes_and_evaluates(shapes, tmp_path):
    from segaug.train.evaluate import evaluate
    from segaug.train.loop import train

    table = ClassTable.load(shapes / "classes.json")
    tr = samples(shapes, [f"im{i}" for i in range(8)])
    va = samples(shapes, ["im8", "im9"])
    cfg = {**TRAIN_CFG, "steps": 8}

    def kw(d):
        return dict(
            out_model=d / "model.pt", out_curve=d / "curve.csv", state_dir=d / "state", device="cpu", run_info=RUN
        )

    train(tr, va, table, AUX, cfg, {"name": "ce"}, 0, **kw(tmp_path / "a"))
    with pytest.raises(RuntimeError, match="killed"):
        train(tr, va, table, AUX, cfg, {"name": "ce"}, 0, callbacks=[Kill()], **kw(tmp_path / "b"))
    train(tr, va, table, AUX, cfg, {"name": "ce"}, 0, **kw(tmp_path / "b"))
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert any(k.startswith("aux_head.") for k in a["state_dict"])
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    _, sc = evaluate(tmp_path / "a" / "model.pt", va, table, device="cpu")
    assert sc["miou"] == pytest.approx(a["history"][-1]["val_miou"])


def test_a_toy_model_family_is_one_builder_and_one_registry_line(monkeypatch):
    from segaug.train import models

    class Toy(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, n, 1)

        def forward(self, x):
            return self.conv(x)

    family = models.ModelFamily("toy", lambda c: c["arch"] == "Toy", lambda c, n: Toy(n))
    monkeypatch.setattr(models, "MODEL_FAMILIES", [family, *models.MODEL_FAMILIES])
    m = models.create_model({"arch": "Toy"}, 5)
    assert isinstance(m, Toy) and m(torch.zeros(1, 3, 8, 8)).shape == (1, 5, 8, 8)
    assert not models.has_own_loss({"arch": "Toy"}) and models.has_own_loss({"arch": "Mask2Former"})
    assert models.model_family({"arch": "PSPNet"}).name == "smp"
    assert models.model_family({"arch": "PSPNet", "backend": "mmseg"}).name == "mmseg"
