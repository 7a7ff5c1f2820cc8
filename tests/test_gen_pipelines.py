"""The SDXL generators (segaug.generative.pipelines) on tiny random-weight models, CPU only.

Each tiny kind is built once per module (segaug.generative.tiny_sdxl) and loaded through the
same ``from_pretrained`` path as the real models.
"""

import numpy as np
import pytest

from segaug.errors import SegaugError
from segaug.generative import tiny_sdxl
from segaug.generative.pipelines import (
    DEFAULTS,
    PIPELINES,
    Generator,
    GenJob,
    attempt_seed,
    bad_image_reason,
    derive_seed,
    generation_size,
)

H, W = 120, 160  # source size; generated at 48x64 (resolution 64, multiple_of 16)
KIND = {"sdxl_adapter": "sdxl-adapter", "sdxl_controlnet": "sdxl-controlnet", "sdxl_inpaint": "sdxl-inpaint"}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_sdxl")
    return {p: tiny_sdxl.build(k, root / k) for p, k in KIND.items()}


def tiny_cfg(pipeline, tiny_dirs, **extra):
    d = tiny_dirs[pipeline]
    cfg = dict(pipeline=pipeline, base=str(d), resolution=64, multiple_of=16, steps=8, batch_size=2)
    if pipeline == "sdxl_adapter":
        cfg["adapter"] = str(d / "adapter")
    if pipeline == "sdxl_controlnet":
        cfg.update(controlnet=str(d), controlnet_subfolder="controlnet")
    return {**cfg, **extra}


@pytest.fixture(scope="module")
def generators(tiny_dirs):
    return {p: Generator(tiny_cfg(p, tiny_dirs), device="cpu") for p in PIPELINES}


def make_job(seed, prompt="a photo of a cat on grass", h=H, w=W, prior_seed=0):
    rng = np.random.default_rng(prior_seed)
    yy, xx = np.mgrid[:h, :w]
    image = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], -1).astype(np.uint8)
    prior = np.zeros((h, w), np.uint8)
    for _ in range(4):
        prior[rng.integers(0, h), :] = 255
        prior[:, rng.integers(0, w)] = 255
    mask = np.zeros((h, w), bool)
    mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
    return GenJob(image=image, prompt=prompt, seed=seed, prior=prior, mask=mask)


# ----------------------------------------------------------------------------- pure helpers


def test_derive_seed_is_stable_and_63_bit():
    s = derive_seed(0, "2007_000032", 1)
    assert s == derive_seed(0, "2007_000032", 1) and 0 <= s < 2**63
    # pinned: a change of the formula would silently change every generated dataset
    assert s == 4561685637712615593
    others = {
        derive_seed(0, "2007_000032", 2),
        derive_seed(1, "2007_000032", 1),
        derive_seed(0, "2007_000033", 1),
        derive_seed(0, "2007_000032", 1, attempt=1),
    }
    assert s not in others and len(others) == 4
    assert attempt_seed(7, 0) == 7 and attempt_seed(7, 1) == derive_seed(7, "retry", 0, 1) != 7


def test_bad_image_reason():
    ok = np.full((4, 4, 3), 0.5, np.float32)
    assert bad_image_reason(ok) is None
    nan = ok.copy()
    nan[0, 0, 0] = np.nan
    assert bad_image_reason(nan) == "nan"
    assert bad_image_reason(np.zeros((4, 4, 3), np.float32)) == "black"
    assert bad_image_reason(np.full((4, 4, 3), 2, np.uint8)) == "black"
    assert bad_image_reason(np.full((4, 4, 3), 3, np.uint8)) is None


def test_generation_size():
    assert generation_size(375, 500, 1024, 64) == (768, 1024)  # a VOC image at the paper's size
    assert generation_size(500, 333, 1024, 64) == (1024, 704)
    assert generation_size(120, 160, 64, 32) == (64, 64)
    assert generation_size(10, 400, 512, 64) == (64, 512)  # never below one multiple


def test_unknown_config_key_lists_known_keys():
    with pytest.raises(SegaugError, match="unknown key.*stepz.*known keys:.*steps"):
        Generator({"pipeline": "sdxl_adapter", "stepz": 30}, device="cpu")
    with pytest.raises(SegaugError, match="pipeline 'sdxl_foo'"):
        Generator({"pipeline": "sdxl_foo"}, device="cpu")
    with pytest.raises(SegaugError, match="multiple_of"):
        Generator({"multiple_of": 12}, device="cpu")
    assert DEFAULTS["steps"] == 30 and DEFAULTS["guidance_scale"] == 7.5 and DEFAULTS["resolution"] == 1024


def test_adapter_needs_a_multiple_of_its_unshuffle_factor(tiny_dirs):
    with pytest.raises(SegaugError, match="multiple_of 8 is not a multiple of the adapter's downscale_factor 16"):
        Generator(tiny_cfg("sdxl_adapter", tiny_dirs, multiple_of=8), device="cpu")
    Generator(tiny_cfg("sdxl_controlnet", tiny_dirs, multiple_of=8), device="cpu")  # no unshuffle: fine


def test_hub_id_missing_offline_is_named(tiny_dirs):
    missing = "segaug-tests/no-such-sdxl-model"
    with pytest.raises(SegaugError, match=missing):
        Generator(tiny_cfg("sdxl_adapter", tiny_dirs, base=missing), device="cpu")
    with pytest.raises(SegaugError, match="T2I-Adapter.*segaug-tests/no-such-adapter"):
        Generator(tiny_cfg("sdxl_adapter", tiny_dirs, adapter="segaug-tests/no-such-adapter"), device="cpu")


# ----------------------------------------------------------------------------- tiny models


def test_tiny_build_layout_and_determinism(tiny_dirs, tmp_path):
    import json

    assert (tiny_dirs["sdxl_adapter"] / "adapter" / "config.json").exists()
    assert (
        json.loads((tiny_dirs["sdxl_adapter"] / "adapter" / "config.json").read_text())["adapter_type"]
        == "full_adapter_xl"
    )
    assert (tiny_dirs["sdxl_controlnet"] / "controlnet" / "config.json").exists()
    assert json.loads((tiny_dirs["sdxl_inpaint"] / "unet" / "config.json").read_text())["in_channels"] == 9
    again = tiny_sdxl.build("sdxl-adapter", tmp_path / "again")
    for part in ("unet", "adapter", "text_encoder"):
        name = next(p.name for p in (again / part).glob("*.safetensors"))
        assert (again / part / name).read_bytes() == (tiny_dirs["sdxl_adapter"] / part / name).read_bytes(), part


# ----------------------------------------------------------------------------- generation


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_generate_source_size_and_seed_determinism(generators, pipeline):
    gen = generators[pipeline]
    a, b = gen.generate([make_job(11), make_job(12)])
    for r, seed in ((a, 11), (b, 12)):
        assert r.image.dtype == np.uint8 and r.image.shape == (H, W, 3)
        assert (r.seed, r.attempts, r.rejected) == (seed, 1, [])
    assert not np.array_equal(a.image, b.image)  # different seeds, different images
    (a2,) = gen.generate([make_job(11)])
    (a3,) = gen.generate([make_job(11)])
    assert np.array_equal(a2.image, a3.image)  # same seed, same batch: identical bytes


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_batch_invariance(generators, pipeline):
    """Job A alone and A batched with B: same image up to float rounding (<= 1 grey level)."""
    gen = generators[pipeline]
    (alone,) = gen.generate([make_job(21)])
    batched, _ = gen.generate([make_job(21), make_job(22, prompt="a red car", prior_seed=5)])
    diff = np.abs(alone.image.astype(int) - batched.image.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.05


@pytest.mark.parametrize("pipeline", ["sdxl_adapter", "sdxl_controlnet"])
def test_prior_changes_the_image(generators, pipeline):
    gen = generators[pipeline]
    a, b = gen.generate([make_job(31, prior_seed=0), make_job(31, prior_seed=1)])
    assert np.abs(a.image.astype(int) - b.image.astype(int)).max() >= 2  # more than float noise


def test_jobs_of_different_sizes_keep_order_and_size(generators):
    jobs = [make_job(41), make_job(42, h=64, w=48), make_job(43)]
    out = generators["sdxl_adapter"].generate(jobs)
    assert [r.image.shape for r in out] == [(H, W, 3), (64, 48, 3), (H, W, 3)]
    assert [r.seed for r in out] == [41, 42, 43]


def test_missing_condition_is_a_user_error(generators):
    job = make_job(1)
    job.prior = None
    with pytest.raises(SegaugError, match="needs a prior"):
        generators["sdxl_adapter"].generate([job])
    job = make_job(1)
    job.mask = np.zeros((10, 10), bool)
    with pytest.raises(SegaugError, match="mask is"):
        generators["sdxl_inpaint"].generate([job])


def _corrupt(monkeypatch, gen, bad_calls, value=np.nan):
    """Make the first ``bad_calls`` pipeline calls return ``value`` for their first image."""
    real, calls = gen._call_pipeline, []

    def fake(jobs, seeds, size):
        out = real(jobs, seeds, size)
        calls.append(list(seeds))
        if len(calls) <= bad_calls:
            out[0] = value
        return out

    monkeypatch.setattr(gen, "_call_pipeline", fake)
    return calls


@pytest.mark.parametrize("value,reason", [(np.nan, "nan"), (0.0, "black")])
def test_bad_output_is_regenerated_with_a_new_seed(generators, monkeypatch, value, reason):
    gen = generators["sdxl_adapter"]
    calls = _corrupt(monkeypatch, gen, bad_calls=1, value=value)
    a, b = gen.generate([make_job(51), make_job(52)])
    assert calls == [[51, 52], [attempt_seed(51, 1)]]  # only the bad job is regenerated
    assert (a.attempts, a.rejected, a.seed) == (2, [reason], attempt_seed(51, 1))
    assert (b.attempts, b.rejected, b.seed) == (1, [], 52)
    assert a.image.shape == (H, W, 3) and bad_image_reason(a.image) is None


def test_all_attempts_bad_is_an_error(generators, monkeypatch):
    gen = generators["sdxl_adapter"]
    calls = _corrupt(monkeypatch, gen, bad_calls=99)
    with pytest.raises(SegaugError, match="failed 3 times for prompt 'a cursed prompt'.*seed 61"):
        gen.generate([make_job(61, prompt="a cursed prompt")])
    assert len(calls) == DEFAULTS["max_attempts"]
