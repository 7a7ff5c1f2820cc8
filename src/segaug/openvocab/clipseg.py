"""CLIPSeg surfaces: the light open-vocabulary surface source.

CLIPSeg (Lüddecke & Ecker, CVPR 2022) is a CLIP ViT with a small decoder that turns a text
prompt into a dense logit map for that prompt. :class:`ClipSegSurfaces` asks it for every
surface at once and keeps, per pixel, the most probable surface:

1. prompts: each surface is written into each of ``prompt_templates``
   (``"a photo of {}."``, ``"{}"`` -> ``"a photo of road."``, ``"road"``);
2. **one batched forward per image**: the image, preprocessed once, is paired with every
   prompt (batch = surfaces x templates) through ``CLIPSegForImageSegmentation``;
3. ``p_s = mean over templates of sigmoid(logits)`` (prompt ensembling), a map per surface
   at CLIPSeg's resolution (352x352 for ``CIDAS/clipseg-rd64-refined``), upsampled bilinearly
   to the image's HxW;
4. a pixel gets ``argmax_s p_s`` if that probability is ``>= threshold``, else 255 (no surface)
   (:func:`segaug.openvocab.surfaces.assign_by_threshold`).

The model is a hub id (checked against the offline cache by :func:`segaug.generative.hub.resolve`)
or a local directory, e.g. the tiny random-weight one of
:func:`segaug.openvocab.tiny.build_tiny_clipseg`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from segaug.errors import SegaugError
from segaug.generative import hub
from segaug.openvocab.surfaces import SurfaceMap, assign_by_threshold, check_image, check_surfaces

log = logging.getLogger(__name__)

DEFAULT_MODEL = "CIDAS/clipseg-rd64-refined"
DEFAULT_TEMPLATES = ("a photo of {}.", "{}")


def check_templates(templates: Sequence[str], key: str = "prompt_templates") -> tuple[str, ...]:
    """Prompt templates: a non-empty list of strings, each with one ``{}`` for the surface name."""
    if isinstance(templates, str):
        templates = (templates,)
    templates = tuple(templates)
    bad = [t for t in templates if not isinstance(t, str) or t.count("{}") != 1]
    if not templates or bad:
        raise SegaugError(f"{key}: give templates with exactly one '{{}}' for the surface name, got {list(templates)}")
    return templates


def expand_prompts(surfaces: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Surface-major prompt list: ``[t.format(s) for s in surfaces for t in templates]``."""
    return [t.format(s) for s in surfaces for t in templates]


class ClipSegSurfaces:
    """Open-vocabulary surface maps from CLIPSeg (see the module docstring for the rule).

    Args:
        model: hub id or local directory of a ``CLIPSegForImageSegmentation`` + ``CLIPSegProcessor``.
        device: ``"auto"`` (CUDA when visible), ``"cuda"`` or ``"cpu"``.
        threshold: minimum ensembled probability for a pixel to get a surface, in [0, 1].
        prompt_templates: templates with one ``{}`` each; their probabilities are averaged.
    """

    name = "clipseg"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        threshold: float = 0.4,
        prompt_templates: Sequence[str] = DEFAULT_TEMPLATES,
    ):
        from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

        from segaug.device import resolve_device

        if not 0.0 <= float(threshold) <= 1.0:
            raise SegaugError(f"clipseg threshold must be in [0, 1], got {threshold}")
        self.threshold = float(threshold)
        self.templates = check_templates(prompt_templates)
        ref = hub.resolve(model, "CLIPSeg model")
        self.device = resolve_device(device)
        self.processor = CLIPSegProcessor.from_pretrained(ref)
        self.model = CLIPSegForImageSegmentation.from_pretrained(ref).to(self.device).eval()
        self.max_tokens = self.model.config.text_config.max_position_embeddings
        log.info(
            "CLIPSeg %s on %s (threshold %.2f, %d templates)", model, self.device, self.threshold, len(self.templates)
        )

    @torch.no_grad()
    def probabilities(self, image: np.ndarray, surfaces: Sequence[str]) -> np.ndarray:
        """``(S, H, W)`` float32: the template-ensembled probability of each surface per pixel."""
        image = check_image(image)
        surfaces = check_surfaces(surfaces)
        h, w = image.shape[:2]
        if not surfaces:
            return np.zeros((0, h, w), np.float32)
        prompts = expand_prompts(surfaces, self.templates)
        pixels = self.processor.image_processor(images=image, input_data_format="channels_last", return_tensors="pt")[
            "pixel_values"
        ]
        tokens = self.processor.tokenizer(
            prompts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        logits = self.model(
            input_ids=tokens["input_ids"].to(self.device),
            attention_mask=tokens["attention_mask"].to(self.device),
            pixel_values=pixels.to(self.device).expand(len(prompts), -1, -1, -1),
        ).logits
        logits = logits.reshape(len(surfaces), len(self.templates), *logits.shape[-2:]).float()
        probs = torch.sigmoid(logits).mean(dim=1, keepdim=True).transpose(0, 1)  # (1, S, h', w')
        probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)[0]
        return probs.clamp_(0, 1).cpu().numpy()

    def predict(self, image: np.ndarray, surfaces: list[str]) -> SurfaceMap:
        """Surface map of ``image`` over ``surfaces`` (255 where no surface passes the threshold)."""
        surfaces = check_surfaces(surfaces)
        probs = self.probabilities(image, surfaces)
        return SurfaceMap(surfaces, assign_by_threshold(probs, self.threshold))
