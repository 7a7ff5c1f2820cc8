"""CLIP score, the CLIP post-filter and FID of a synthetic set.

- :class:`ClipScorer` -- CLIP score of (image, text) pairs, as torchmetrics defines it:
  ``100 * max(cos(E_image, E_text), 0)`` with CLIP's projected embeddings.
- :func:`class_prompt_scores` / :func:`select_best` -- the post-filter: among k generated
  candidates for one plan entry keep the one that best shows the entry's classes.
- :func:`fid` -- Fréchet Inception Distance between real and synthetic images through
  torchmetrics' ``FrechetInceptionDistance`` (Inception v3 features of torch-fidelity), or
  through any feature network (:func:`tiny_feature_extractor` for the demo and the tests).

CLIP models are named by a hub id (default :data:`DEFAULT_MODEL`) or a local directory (the
tiny model of ``segaug.generative.tiny.build_tiny("clip", dir)``). The Inception weights are
not on the Hugging Face hub: torch-fidelity downloads them from :data:`INCEPTION_URL` into the
torch hub cache (``$TORCH_HOME/hub/checkpoints``); :func:`prefetch_inception` does that ahead
of offline jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segaug.errors import SegaugError
from segaug.generative import hub

log = logging.getLogger(__name__)

DEFAULT_MODEL = "openai/clip-vit-large-patch14"
# torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3 (torch-fidelity 0.4.0)
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
FID_SIZE = 299  # Inception v3 input size; every image is resized to FID_SIZE x FID_SIZE
CLASS_PROMPT = "a photo of a {}"


# -------------------------------------------------------------------------------- CLIP score


class ClipScorer:
    """CLIP score of (image, text) pairs with one CLIP model, loaded once.

    ``score(images, texts)[i] = 100 * max(cos(E_I(images[i]), E_T(texts[i])), 0)`` where
    ``E_I`` / ``E_T`` are CLIP's projected image / text embeddings: the definition of
    torchmetrics' ``clip_score`` (Hessel et al. 2021, without the 2.5 weight).

    This computes the formula with the transformers model directly rather than calling
    torchmetrics: torchmetrics 1.9's ``clip_score`` only loads a fixed list of hub ids (not a
    local directory), and its feature code expects ``get_image_features`` to return a tensor,
    which transformers 5 no longer does (it returns a ``BaseModelOutputWithPooling``).

    Args:
        model: hub id or local directory holding a ``CLIPModel`` and its ``CLIPProcessor``.
        device: ``"auto"`` (CUDA when available), ``"cuda"``, ``"cpu"``...
        batch_size: pairs per forward pass.
    """

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 32):
        from transformers import CLIPModel, CLIPProcessor

        from segaug.device import resolve_device

        ref = hub.resolve(model, "CLIP model")
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        self.processor = CLIPProcessor.from_pretrained(ref)
        self.model = CLIPModel.from_pretrained(ref).to(self.device).eval()
        self.max_tokens = self.model.config.text_config.max_position_embeddings
        log.info("CLIP %s on %s", model, self.device)

    @torch.no_grad()
    def score(self, images: list[np.ndarray], texts: list[str]) -> np.ndarray:
        """CLIP score (float32, in [0, 100]) of each ``(images[i], texts[i])`` pair."""
        images, texts = list(images), list(texts)
        if len(images) != len(texts):
            raise SegaugError(f"CLIP score: {len(images)} images but {len(texts)} texts; pass one text per image")
        scores = [np.zeros(0, np.float32)]
        for start in range(0, len(images), self.batch_size):
            stop = start + self.batch_size
            cos = (self.image_embeddings(images[start:stop]) * self.text_embeddings(texts[start:stop])).sum(-1)
            scores.append((100 * cos.clamp(min=0)).float().cpu().numpy())
        return np.concatenate(scores)

    def image_embeddings(self, images: list[np.ndarray]) -> torch.Tensor:
        """L2-normalised projected CLIP embeddings of uint8 HxWx3 RGB images."""
        pixels = self.processor(images=images, return_tensors="pt", input_data_format="channels_last")[
            "pixel_values"
        ].to(self.device)
        return _unit(_pooled(self.model.get_image_features(pixel_values=pixels)))

    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised projected CLIP embeddings of texts (truncated to CLIP's 77 tokens)."""
        tokens = self.processor(
            text=texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_tokens
        ).to(self.device)
        features = self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return _unit(_pooled(features))


def _pooled(features) -> torch.Tensor:
    """The projected embedding: transformers 5 wraps it in ``pooler_output``, 4.x returned it."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(p=2, dim=-1, keepdim=True)


# ---------------------------------------------------------------------------- the post-filter


def class_prompt_scores(scorer: ClipScorer, candidates: list[np.ndarray], class_names: list[str]) -> np.ndarray:
    """Post-filter score of each candidate image: mean CLIP score against its class prompts.

    In the style of Category-Calibrated CLIP Rank (Fang et al. 2024): a candidate generated
    for a label map with classes ``c_1..c_m`` scores

        ``s(x) = (1/m) * sum_j CLIPScore(x, "a photo of a {c_j}")``

    i.e. how well the image shows *every* class it is supposed to contain, independently of
    the (possibly long) generation prompt. Returns float32 scores, shape ``(len(candidates),)``.
    """
    if not candidates:
        raise SegaugError("CLIP post-filter: no candidate images to score")
    if not class_names:
        raise SegaugError("CLIP post-filter: the label map has no class names to score against")
    prompts = [CLASS_PROMPT.format(name) for name in class_names]
    images = [img for img in candidates for _ in prompts]
    scores = scorer.score(images, prompts * len(candidates))
    return scores.reshape(len(candidates), len(prompts)).mean(axis=1).astype(np.float32)


def select_best(scorer: ClipScorer, candidates: list[np.ndarray], class_names: list[str]) -> tuple[int, np.ndarray]:
    """Index of the candidate with the highest :func:`class_prompt_scores` (first on ties), and the scores."""
    scores = class_prompt_scores(scorer, candidates, class_names)
    return int(np.argmax(scores)), scores


# ------------------------------------------------------------------------------------------ FID


def inception_path() -> Path:
    """Where torch-fidelity caches the Inception weights: ``<torch hub dir>/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[-1]


def prefetch_inception() -> Path:
    """Download the FID Inception weights into the torch hub cache (no-op when present)."""
    path = inception_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s to %s", INCEPTION_URL, path)
        try:
            torch.hub.download_url_to_file(INCEPTION_URL, str(path), progress=False)
        except Exception as e:
            raise SegaugError(f"cannot download the FID Inception weights from {INCEPTION_URL}: {e}") from None
    return path


def inception_feature():
    """torchmetrics' ``feature`` argument for the standard 2048-d Inception FID, offline-checked."""
    path = inception_path()
    if not path.exists() and hub.offline():
        raise SegaugError(
            f"the FID Inception weights {path} are not cached and this job runs offline; "
            f"download them first on a machine with internet: `snakemake prefetch` "
            f"(or `TORCH_HOME={Path(torch.hub.get_dir()).parent} python -c "
            f"'from segaug.generative.clip import prefetch_inception; prefetch_inception()'`)"
        )
    return 2048


class TinyFeatures(nn.Module):
    """Small random CNN: uint8 ``(N, 3, H, W)`` images to ``num_features`` features (FID demo/tests)."""

    def __init__(self, dim: int = 64):
        super().__init__()
        self.num_features = dim  # read by FrechetInceptionDistance (no dummy forward needed)
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=4),
            nn.ReLU(),
            nn.Conv2d(16, 32, 5, stride=4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(32 * 16, dim),
        )
        for layer in self.net:  # variance-preserving init: features of order 1, FIDs of order 1
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float() / 127.5 - 1.0)


def tiny_feature_extractor(seed: int = 0, dim: int = 64) -> nn.Module:
    """A :class:`TinyFeatures` with random weights drawn from ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyFeatures(dim).eval().requires_grad_(False)


def to_fid_batch(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 HxWx3 RGB arrays -> uint8 ``(N, 3, 299, 299)`` (bilinear, antialiased)."""
    out = []
    for img in images:
        if img.ndim != 3 or img.shape[2] != 3:
            raise SegaugError(f"FID: expected HxWx3 RGB images, got shape {img.shape}")
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
        x = nn.functional.interpolate(x, size=(FID_SIZE, FID_SIZE), mode="bilinear", antialias=True)
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def _chunks(images: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for img in images:
        chunk.append(img)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def fid(
    real: Iterable[np.ndarray],
    fake: Iterable[np.ndarray],
    feature: str | nn.Module = "inception",
    device: str = "auto",
    batch_size: int = 32,
) -> float:
    """FID between ``real`` and ``fake`` images (uint8 HxWx3 RGB; iterables are streamed).

    ``feature="inception"`` is the standard FID (2048-d pool features of torch-fidelity's
    Inception v3, weights from :data:`INCEPTION_URL`); an ``nn.Module`` mapping uint8
    ``(N, 3, 299, 299)`` to ``(N, d)`` features replaces it (e.g. :func:`tiny_feature_extractor`;
    such FIDs are only comparable with the same module). Each side needs at least 2 images.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    from segaug.device import resolve_device

    if isinstance(feature, str):
        if feature != "inception":
            raise SegaugError(f"FID feature {feature!r}: use 'inception' or pass a torch.nn.Module")
        feature = inception_feature()
    try:
        metric = FrechetInceptionDistance(feature=feature, reset_real_features=False)
    except OSError as e:  # urllib's URLError is an OSError: the Inception download failed
        raise SegaugError(f"cannot load the FID Inception weights ({INCEPTION_URL}): {e}") from None
    metric = metric.to(resolve_device(device))
    counts = {}
    for side, images in (("real", real), ("fake", fake)):
        counts[side] = 0
        for chunk in _chunks(images, max(1, int(batch_size))):
            metric.update(to_fid_batch(chunk).to(metric.device), real=side == "real")
            counts[side] += len(chunk)
    if min(counts.values()) < 2:
        raise SegaugError(
            f"FID needs at least 2 images on each side, got {counts['real']} real and {counts['fake']} synthetic"
        )
    return max(0.0, float(metric.compute()))  # FID >= 0; identical sets can give -1e-8
