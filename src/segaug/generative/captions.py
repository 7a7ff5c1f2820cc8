"""Image captions with BLIP-2 (Li et al. 2023), through transformers.

The paper captions every training image with BLIP-2 and uses the caption as the text prompt
of the generator (optionally with the image's class names appended, see
:mod:`segaug.generative.prompts`). :class:`Captioner` loads the processor and the model once
and captions images in batches with greedy decoding, so a caption is a deterministic
function of the image and the model.

``model`` is a Hugging Face hub id (default :data:`DEFAULT_MODEL`, must already be in the
cache when offline: ``snakemake prefetch``) or a local directory such as the tiny model that
``segaug.generative.tiny.build_tiny("blip2", dir)`` writes.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from segaug.errors import SegaugError
from segaug.generative import hub

log = logging.getLogger(__name__)

DEFAULT_MODEL = "Salesforce/blip2-opt-2.7b"
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def torch_dtype(name: str, device: str) -> torch.dtype:
    """The dtype to load weights in: ``name`` on CUDA, always float32 on CPU (no fp16 kernels)."""
    if name not in DTYPES:
        raise SegaugError(f"captioner dtype {name!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[name] if device.startswith("cuda") else torch.float32


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Captioner:
    """BLIP-2 captioner: processor and model loaded once, then :meth:`caption` in batches.

    Args:
        model: hub id or local directory of a ``Blip2ForConditionalGeneration`` checkpoint
            saved together with its ``Blip2Processor``.
        device: ``"auto"`` (CUDA when available), ``"cuda"``, ``"cpu"``...
        dtype: weights dtype on CUDA (``float16``, ``bfloat16``, ``float32``); CPU uses float32.
        batch_size: images per forward pass.
        max_new_tokens: caption length limit, in tokens.
        prompt: optional text the caption continues (e.g. ``"a photo of"``); it is not part of
            the returned caption. ``None`` captions from the image alone, as the paper does.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        dtype: str = "float16",
        batch_size: int = 16,
        max_new_tokens: int = 30,
        prompt: str | None = None,
    ):
        from transformers import Blip2ForConditionalGeneration, Blip2Processor

        from segaug.device import resolve_device

        if batch_size < 1 or max_new_tokens < 1:
            raise SegaugError(
                f"captioner: batch_size ({batch_size}) and max_new_tokens ({max_new_tokens}) must be >= 1"
            )
        ref = hub.resolve(model, "captioner")
        self.device = resolve_device(device)
        self.dtype = torch_dtype(dtype, self.device)
        self.batch_size, self.prompt = batch_size, prompt or ""
        self.processor = Blip2Processor.from_pretrained(ref)
        self.model = Blip2ForConditionalGeneration.from_pretrained(ref, dtype=self.dtype)
        self.model.to(self.device).eval()
        self.generation_config = greedy_config(self.model.generation_config, max_new_tokens)
        log.info("captioner %s on %s (%s)", model, self.device, self.dtype)

    @torch.no_grad()
    def caption(self, images: list[np.ndarray]) -> list[str]:
        """Captions of ``images`` (uint8 HxWx3 RGB arrays), in order; ``""`` when empty."""
        captions: list[str] = []
        for batch in batches(list(images), self.batch_size):
            captions += self._caption_batch(batch)
        return captions

    def _caption_batch(self, images: list[np.ndarray]) -> list[str]:
        # Without a prompt, generate() itself starts from the image tokens and BOS (the documented
        # BLIP-2 usage); with one, the processor puts the image tokens before the prompt.
        text = [self.prompt] * len(images) if self.prompt else None
        inputs = self.processor(images=images, text=text, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        out = self.model.generate(**inputs, generation_config=self.generation_config)
        if "input_ids" in inputs:  # the output repeats the prompt: keep the new tokens only
            out = out[:, inputs["input_ids"].shape[1] :]
        # image tokens and BOS are special tokens: decoding skips them
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]


def greedy_config(base, max_new_tokens: int):
    """A copy of the checkpoint's generation config set to greedy decoding (deterministic).

    The checkpoint's own ``generation_config.json`` is kept for its token ids and token
    suppression; BLIP-2's ``generate`` would otherwise use the language model's defaults.
    """
    config = copy.deepcopy(base)
    config.max_new_tokens = max_new_tokens
    config.do_sample, config.num_beams = False, 1
    for sampling_only in ("temperature", "top_p", "top_k"):
        setattr(config, sampling_only, None)
    return config


def caption_images(captioner: Captioner, items: Iterable[tuple[str, np.ndarray]]) -> dict[str, str]:
    """Caption ``(id, image)`` pairs in batches; return ``{id: caption}`` (progress in the log)."""
    from segaug.progress import Progress

    captions: dict[str, str] = {}
    pending: list[tuple[str, np.ndarray]] = []
    total = len(items) if hasattr(items, "__len__") else None
    with Progress(total, desc="captions") as bar:
        for item in items:
            pending.append(item)
            if len(pending) == captioner.batch_size:
                captions.update(_flush(captioner, pending))
                bar.update(len(pending))
                pending = []
        if pending:
            captions.update(_flush(captioner, pending))
            bar.update(len(pending))
    return captions


def _flush(captioner: Captioner, pending: list[tuple[str, np.ndarray]]) -> dict[str, str]:
    ids = [i for i, _ in pending]
    return dict(zip(ids, captioner.caption([img for _, img in pending]), strict=True))
