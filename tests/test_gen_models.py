"""Tiny random-weight generative models (segaug.generative.tiny) and their users:
BLIP-2 captions (captions.py), CLIP score / post-filter and FID (clip.py).

Everything runs offline on CPU with models built from configs (HF_HUB_OFFLINE=1, conftest).
"""

import numpy as np
import pytest
import torch

from segaug.errors import SegaugError
from segaug.generative.tiny import CLIP_VOCAB_SIZE, TINY_KINDS, build_tiny, clip_tokenizer, gpt2_tokenizer


def random_images(n, seed=0, shape=(40, 50, 3)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Build each tiny kind once per module; ``tiny("clip")`` is its directory."""
    root, built = tmp_path_factory.mktemp("tiny"), {}

    def get(kind):
        if kind not in built:
            built[kind] = build_tiny(kind, root / kind)
        return built[kind]

    return get


# ------------------------------------------------------------------------------- tokenizers


def test_clip_tokenizer_roundtrip(tmp_path):
    from transformers import CLIPTokenizer

    path = clip_tokenizer(tmp_path / "tok")
    tok = CLIPTokenizer.from_pretrained(path)
    enc = tok(["a photo of car, boat"], padding="max_length", max_length=77, truncation=True)
    ids = enc["input_ids"][0]
    assert len(ids) == 77
    assert max(ids) < CLIP_VOCAB_SIZE <= 1000
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "a photo of car , boat"


def test_gpt2_tokenizer_roundtrip(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gpt2_tokenizer(tmp_path / "tok"))
    ids = tok("A photo, of Car!")["input_ids"]
    assert ids[0] == tok.bos_token_id == 2  # OPT prepends </s>
    assert tok.decode(ids, skip_special_tokens=True) == "A photo, of Car!"


# ---------------------------------------------------------------------------- build_tiny


def test_build_tiny_unknown_kind(tmp_path):
    with pytest.raises(SegaugError, match="unknown tiny model kind 'gpt5'.*blip2.*clip.*annotators"):
        build_tiny("gpt5", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_tiny_kinds_listed():
    assert {"blip2", "clip", "annotators", "sdxl-adapter", "sdxl-controlnet", "sdxl-inpaint"} == set(TINY_KINDS)


def test_same_seed_same_weights(tmp_path):
    from safetensors.torch import load_file

    a = load_file(build_tiny("clip", tmp_path / "a", seed=3) / "model.safetensors")
    b = load_file(build_tiny("clip", tmp_path / "b", seed=3) / "model.safetensors")
    c = load_file(build_tiny("clip", tmp_path / "c", seed=4) / "model.safetensors")
    key = next(k for k in a if k.endswith("q_proj.weight"))
    assert torch.equal(a[key], b[key])
    assert not torch.equal(a[key], c[key])
    assert not list(tmp_path.glob(".*.tmp"))  # atomic build left no temporary behind


# -------------------------------------------------------------------------------- BLIP-2


def test_tiny_blip2_loads_and_generates(tiny):
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    path = tiny("blip2")
    processor = Blip2Processor.from_pretrained(path)
    model = Blip2ForConditionalGeneration.from_pretrained(path).eval()
    inputs = processor(images=random_images(2), return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[0] == 2


def test_captioner_batches_deterministically(tiny):
    from segaug.generative.captions import Captioner, caption_images

    images = random_images(3)
    captioner = Captioner(str(tiny("blip2")), device="cpu", batch_size=2, max_new_tokens=8)
    first = captioner.caption(images)
    assert len(first) == 3 and all(isinstance(c, str) for c in first)
    assert all(c == c.strip() and c.isascii() for c in first)
    assert captioner.caption(images) == first
    assert Captioner(str(tiny("blip2")), device="cpu", batch_size=16, max_new_tokens=8).caption(images) == first
    by_id = caption_images(captioner, ((f"img{i}", im) for i, im in enumerate(images)))
    assert by_id == {f"img{i}": c for i, c in enumerate(first)}


def test_captioner_with_prompt_returns_continuation_only(tiny):
    from segaug.generative.captions import Captioner

    captions = Captioner(str(tiny("blip2")), device="cpu", max_new_tokens=6, prompt="a photo of").caption(
        random_images(2)
    )
    assert all(isinstance(c, str) and not c.startswith("a photo of") for c in captions)


def test_captioner_missing_hub_id_offline():
    from segaug.generative.captions import Captioner

    with pytest.raises(SegaugError) as err:
        Captioner("segaug-test/no-such-blip2", device="cpu")
    assert "segaug-test/no-such-blip2" in str(err.value) and "prefetch" in str(err.value)


# ------------------------------------------------------------------------------------ CLIP


def test_clip_scores(tiny):
    from segaug.generative.clip import ClipScorer

    scorer = ClipScorer(str(tiny("clip")), device="cpu", batch_size=3)
    images, texts = random_images(4), ["a photo of a car", "boat", "a dog on grass", ""]
    scores = scorer.score(images, texts)
    assert scores.shape == (4,) and scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 100))
    np.testing.assert_array_equal(scorer.score(images, texts), scores)
    with pytest.raises(SegaugError, match="4 images but 3 texts"):
        scorer.score(images, texts[:3])


def test_clip_score_matches_formula(tiny):
    from transformers import CLIPModel, CLIPProcessor

    from segaug.generative.clip import ClipScorer

    path = str(tiny("clip"))
    image, text = random_images(1, seed=5), ["a photo of a boat"]
    model, processor = CLIPModel.from_pretrained(path).eval(), CLIPProcessor.from_pretrained(path)
    with torch.no_grad():
        out = model(**processor(text=text, images=image, return_tensors="pt", padding=True))
    cos = torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds).item()
    got = ClipScorer(path, device="cpu").score(image, text)[0]
    assert got == pytest.approx(max(100 * cos, 0.0), abs=1e-3)


def test_select_best_picks_argmax(tiny):
    from segaug.generative.clip import ClipScorer, class_prompt_scores, select_best

    scorer = ClipScorer(str(tiny("clip")), device="cpu")
    candidates = random_images(4, seed=1)
    best, scores = select_best(scorer, candidates, ["car", "boat"])
    assert scores.shape == (4,)
    assert best == int(np.argmax(scores))
    # the definition: mean over the classes of the CLIP score against "a photo of a {class}"
    per_class = [scorer.score(candidates, [f"a photo of a {c}"] * 4) for c in ("car", "boat")]
    np.testing.assert_allclose(scores, np.mean(per_class, axis=0), rtol=1e-5)
    np.testing.assert_array_equal(class_prompt_scores(scorer, candidates, ["car", "boat"]), scores)
    with pytest.raises(SegaugError):
        select_best(scorer, candidates, [])


# ------------------------------------------------------------------------------------- FID


def test_fid_identical_vs_different():
    from segaug.generative.clip import fid, tiny_feature_extractor

    feature = tiny_feature_extractor(seed=0)
    noise = random_images(8, shape=(60, 80, 3))
    flat = [np.full((60, 80, 3), 100 + 10 * i, np.uint8) for i in range(8)]
    same = fid(noise, iter(noise), feature, device="cpu", batch_size=3)
    different = fid(noise, flat, feature, device="cpu")
    assert abs(same) < 1e-3
    assert different > 1.0 and different > 1000 * abs(same)


def test_fid_needs_two_images_per_side():
    from segaug.generative.clip import fid, tiny_feature_extractor

    with pytest.raises(SegaugError, match="at least 2 images"):
        fid(random_images(1), random_images(3), tiny_feature_extractor(), device="cpu")


def test_fid_inception_offline_without_weights(tmp_path, monkeypatch):
    from segaug.generative.clip import fid

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torch hub cache
    with pytest.raises(SegaugError, match="weights-inception.*prefetch"):
        fid(random_images(2), random_images(2), "inception", device="cpu")


def test_tiny_feature_extractor_is_seeded():
    from segaug.generative.clip import tiny_feature_extractor

    state = torch.random.get_rng_state()
    a, b = tiny_feature_extractor(seed=1), tiny_feature_extractor(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# ------------------------------------------------------------------------------ annotators


@pytest.mark.parametrize("detector", ["LineartDetector", "PidiNetDetector"])
def test_tiny_annotators_load_in_controlnet_aux(tiny, detector):
    import controlnet_aux

    path = tiny("annotators")
    det = getattr(controlnet_aux, detector).from_pretrained(str(path))
    image = random_images(1, shape=(120, 160, 3))[0]
    edges = det(image, detect_resolution=128, image_resolution=128, output_type="np")
    assert edges.dtype == np.uint8
    assert edges.ndim in (2, 3) and edges.shape[:2] == (128, 192)  # controlnet_aux rounds to 64
