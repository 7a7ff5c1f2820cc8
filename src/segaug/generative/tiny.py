"""Tiny random-weight models, built from configs and saved like real checkpoints.

The demo and the tests never reach the Hugging Face hub. Instead each model the generative
branch uses has a *tiny* twin here: same class, same files on disk (``save_pretrained``),
hidden sizes of a few dozen and random weights. Because the twin is a directory written by
``save_pretrained``, the code that loads it is exactly the code that loads the real model
(``from_pretrained(path)``), so the demo exercises the real loading path end to end.

Kinds (:data:`TINY_KINDS`), built with :func:`build_tiny`:

``blip2``            BLIP-2 (vision + Q-Former + OPT) and its processor, for captions
``clip``             CLIP (text + vision) and its processor, for CLIP score / the post-filter
``annotators``       a folder like ``lllyasviel/Annotators`` (line art, PiDiNet) for controlnet_aux
``sdxl-adapter``     SDXL + T2I-Adapter   (built by :mod:`segaug.generative.tiny_sdxl`)
``sdxl-controlnet``  SDXL + ControlNet    (built by :mod:`segaug.generative.tiny_sdxl`)
``sdxl-inpaint``     SDXL inpainting      (built by :mod:`segaug.generative.tiny_sdxl`)

Tokenizers are built offline from a vocabulary written here: the 256 byte-level characters
(and, for CLIP, the same with the end-of-word marker ``</w>``) plus special tokens, and no
merges, so every word is split into single bytes. Captions from a random model are random
strings; they only have to be strings.

Building is deterministic (same kind and seed give the same weights) and atomic (the model
is written to a temporary directory and renamed onto ``out_dir`` only when complete).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from segaug.errors import SegaugError
from segaug.generative.tiny_sdxl import SDXL_KINDS
from segaug.generative.tokenizers import (  # noqa: F401  (re-exported: the tiny models' tokenizers)
    BOS_CLIP,
    CLIP_VOCAB_SIZE,
    EOS_CLIP,
    OPT_SPECIALS,
    byte_chars,
    clip_tokenizer,
    clip_vocab,
    gpt2_tokenizer,
    make_clip_tokenizer,
    make_gpt2_tokenizer,
    opt_vocab,
)
from segaug.io import atomic_path

log = logging.getLogger(__name__)


def seeded(seed: int, make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``make()`` under ``torch.manual_seed(seed)``; the caller's global RNG state is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


# ---------------------------------------------------------------------------------------- BLIP-2

BLIP2_IMAGE_SIZE = 30
BLIP2_QUERY_TOKENS = 4


def blip2_processor():
    """Tiny ``Blip2Processor``: a 30x30 ``BlipImageProcessor`` and the tiny OPT tokenizer.

    The processor adds the ``<image>`` token to the tokenizer (id 260, the last one); it puts
    ``num_query_tokens`` of them before the text, where the model scatters the Q-Former output.
    """
    from transformers import Blip2Processor, BlipImageProcessor

    size = {"height": BLIP2_IMAGE_SIZE, "width": BLIP2_IMAGE_SIZE}
    image_processor = BlipImageProcessor(size=size)
    return Blip2Processor(image_processor, make_gpt2_tokenizer(), num_query_tokens=BLIP2_QUERY_TOKENS)


def blip2_config(vocab_size: int, image_token_index: int):
    """``Blip2Config`` with hidden size 32 and 2 layers in the vision tower, Q-Former and OPT."""
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, OPTConfig

    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
    vision = Blip2VisionConfig(**small, intermediate_size=64, image_size=BLIP2_IMAGE_SIZE, patch_size=6)
    qformer = Blip2QFormerConfig(
        **small,
        vocab_size=vocab_size,
        intermediate_size=64,
        max_position_embeddings=64,
        cross_attention_frequency=1,
    )
    text = OPTConfig(**small, vocab_size=vocab_size, ffn_dim=64, max_position_embeddings=128, word_embed_proj_dim=32)
    return Blip2Config(
        vision_config=vision,
        qformer_config=qformer,
        text_config=text,
        num_query_tokens=BLIP2_QUERY_TOKENS,
        image_text_hidden_size=32,
        image_token_index=image_token_index,
    )


def printable_only(tokenizer) -> list[int]:
    """Ids of every token but printable ASCII bytes and EOS: a random model must not emit them.

    Stored as ``suppress_tokens`` in the tiny model's ``generation_config.json`` so that its
    random captions are readable ASCII (undecodable byte tokens would decode to U+FFFD).
    """
    chars = byte_chars()
    keep = {tokenizer.convert_tokens_to_ids(chars[b]) for b in range(32, 127)}
    keep.add(tokenizer.eos_token_id)
    return [i for i in range(len(tokenizer)) if i not in keep]


def _build_blip2(out: Path, seed: int) -> None:
    from transformers import Blip2ForConditionalGeneration

    processor = blip2_processor()
    tok = processor.tokenizer
    config = blip2_config(len(tok), tok.convert_tokens_to_ids(processor.image_token.content))
    model = seeded(seed, lambda: Blip2ForConditionalGeneration(config))
    model.generation_config.suppress_tokens = printable_only(tok)
    model.save_pretrained(out)
    processor.save_pretrained(out)


# ------------------------------------------------------------------------------------------ CLIP

CLIP_IMAGE_SIZE = 32


def clip_processor():
    """Tiny ``CLIPProcessor``: a 32x32 ``CLIPImageProcessor`` and the tiny CLIP tokenizer."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": CLIP_IMAGE_SIZE},
        crop_size={"height": CLIP_IMAGE_SIZE, "width": CLIP_IMAGE_SIZE},
    )
    return CLIPProcessor(image_processor=image_processor, tokenizer=make_clip_tokenizer())


def clip_config():
    """``CLIPConfig`` with hidden size 32, 2 layers per tower, projection_dim 32, 32x32 images."""
    from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig

    vocab = clip_vocab()
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    text = CLIPTextConfig(
        **small,
        vocab_size=CLIP_VOCAB_SIZE,
        max_position_embeddings=77,
        bos_token_id=vocab[BOS_CLIP],
        eos_token_id=vocab[EOS_CLIP],
        pad_token_id=vocab[EOS_CLIP],
    )
    vision = CLIPVisionConfig(**small, image_size=CLIP_IMAGE_SIZE, patch_size=8)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)


def _build_clip(out: Path, seed: int) -> None:
    from transformers import CLIPModel

    model = seeded(seed, lambda: CLIPModel(clip_config()))
    model.save_pretrained(out)
    clip_processor().save_pretrained(out)


# ------------------------------------------------------------------------------------ annotators

LINEART_FILES = ("sk_model.pth", "sk_model2.pth")
PIDINET_FILE = "table5_pidinet.pth"


def _build_annotators(out: Path, seed: int) -> None:
    """Random weights under ``lllyasviel/Annotators`` file names, in the formats controlnet_aux reads.

    The networks keep their real architecture (controlnet_aux builds them itself), so these
    files are as large as the real ones (line art ~17 MB each, PiDiNet ~3 MB):

    - ``sk_model.pth``, ``sk_model2.pth``: a bare ``state_dict`` of ``lineart.Generator(3, 1, 3)``
      (fine and coarse model), read by ``LineartDetector.from_pretrained``;
    - ``table5_pidinet.pth``: ``{"state_dict": {"module.<key>": tensor}}`` (a DataParallel
      checkpoint) of ``pidi.model.pidinet()``, read by ``PidiNetDetector.from_pretrained``.
    """
    from controlnet_aux.lineart import Generator
    from controlnet_aux.pidi.model import pidinet

    out.mkdir(parents=True)
    for i, name in enumerate(LINEART_FILES):
        torch.save(seeded(seed + i, lambda: Generator(3, 1, 3)).state_dict(), out / name)
    state = seeded(seed + len(LINEART_FILES), pidinet).state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, out / PIDINET_FILE)


# -------------------------------------------------------------------------------------- registry

_BUILDERS: dict[str, Callable[[Path, int], None]] = {
    "blip2": _build_blip2,
    "clip": _build_clip,
    "annotators": _build_annotators,
}
TINY_KINDS: tuple[str, ...] = (*_BUILDERS, *SDXL_KINDS)


def build_tiny(kind: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny model ``kind`` (one of :data:`TINY_KINDS`) into ``out_dir``; return it.

    Same ``kind`` and ``seed`` give the same weights. ``out_dir`` appears only once complete
    (an existing one is replaced). The directory then loads with the real model's classes,
    e.g. ``Blip2ForConditionalGeneration.from_pretrained(out_dir)``.
    """
    if kind not in TINY_KINDS:
        raise SegaugError(f"unknown tiny model kind {kind!r}; known kinds: {', '.join(TINY_KINDS)}")
    out_dir = Path(out_dir)
    if kind in SDXL_KINDS:
        from segaug.generative import tiny_sdxl

        return tiny_sdxl.build(kind, out_dir, seed)
    with atomic_path(out_dir) as tmp:
        _BUILDERS[kind](tmp, seed)
    log.info("built tiny %s (seed %d) in %s", kind, seed, out_dir)
    return out_dir
