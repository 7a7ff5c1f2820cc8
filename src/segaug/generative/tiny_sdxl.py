"""Tiny random-weight SDXL pipelines, saved like the real checkpoints (demo and tests).

:func:`build` writes a directory that ``from_pretrained`` loads exactly like the real models:

``sdxl-adapter``     a ``StableDiffusionXLAdapterPipeline`` (stand-in for
                     ``stabilityai/stable-diffusion-xl-base-1.0``) whose ``adapter/`` subfolder is a
                     ``T2IAdapter(adapter_type="full_adapter_xl")`` (stand-in for
                     ``TencentARC/t2i-adapter-lineart-sdxl-1.0``); load it separately with
                     ``T2IAdapter.from_pretrained(<dir>/adapter)``.
``sdxl-controlnet``  the same base plus a ``ControlNetModel`` in ``controlnet/`` (stand-in for
                     ``diffusers/controlnet-canny-sdxl-1.0``).
``sdxl-inpaint``     a ``StableDiffusionXLInpaintPipeline`` whose UNet has the real inpainting
                     layout, 9 input channels (4 noisy latents + 1 mask + 4 masked-image latents),
                     stand-in for ``diffusers/stable-diffusion-xl-1.0-inpainting-0.1``.

The tiny models keep SDXL's *structure* so the real code paths run unchanged:

- VAE with 4 blocks, i.e. the real downscale factor 8 (a 128 px image has 16x16 latents);
- UNet with SDXL's three down blocks (``DownBlock2D``, then two ``CrossAttnDownBlock2D``),
  ``addition_embed_type="text_time"`` micro-conditioning, and cross-attention over the two
  text encoders' concatenated hidden states (32 + 32 = 64 wide);
- two CLIP text encoders: ``CLIPTextModel`` and ``CLIPTextModelWithProjection`` (pooled, 32 wide);
- T2I-Adapter-XL with four feature levels and pixel-unshuffle 16, as the real one;
- ControlNet with a 4-level conditioning embedding (downscale 8, matching the latents).

Image sides must be multiples of 8 (the VAE), and of 16 with the adapter (its
pixel-unshuffle), the same constraints as the real models; the UNet copes with latent sides
that its two downsamplings do not divide (e.g. 48x64 px -> 6x8 latents).

Weights are random but deterministic: each component is initialised under its own seed
(``seed + k``) inside ``torch.random.fork_rng``, so the global RNG is left untouched. The
ControlNet's zero-initialised convolutions (which make an untrained ControlNet a no-op) are
refilled with random values (std 0.3), and its conditioning embedding gets He-normal weights, so
the prior visibly changes the output (as the adapter's does).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from segaug.errors import SegaugError
from segaug.io import atomic_path

log = logging.getLogger(__name__)

SDXL_KINDS = ("sdxl-adapter", "sdxl-controlnet", "sdxl-inpaint")

# Shared sizes of the tiny models (see the module docstring for why these shapes).
TEXT_HIDDEN = 32  # each CLIP text encoder's width; the UNet cross-attends over 2 x 32
TIME_EMBED = 8  # addition_time_embed_dim: 6 micro-conditioning numbers x 8
UNET_CHANNELS = (16, 32, 32)
UNET_HEADS = (2, 4, 4)  # diffusers' legacy "attention_head_dim" = number of heads
NORM_GROUPS = 8


def _seeded(seed: int, make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build one component under ``seed`` without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make().eval()


def unet_config(in_channels: int = 4) -> dict:
    """Tiny SDXL UNet: three down blocks as in SDXL base, ``text_time`` added conditioning."""
    return dict(
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=UNET_CHANNELS,
        layers_per_block=1,
        norm_num_groups=NORM_GROUPS,
        attention_head_dim=UNET_HEADS,
        transformer_layers_per_block=(1, 1, 1),
        use_linear_projection=True,
        cross_attention_dim=2 * TEXT_HIDDEN,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=6 * TIME_EMBED + TEXT_HIDDEN,
    )


def make_unet(in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**unet_config(in_channels))


def make_vae():
    """Tiny AutoencoderKL with the real downscale factor 8 (four blocks) and SDXL's scaling."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        norm_num_groups=NORM_GROUPS,
        latent_channels=4,
        sample_size=128,
        scaling_factor=0.13025,  # SDXL's VAE
    )


def text_encoder_config():
    from transformers import CLIPTextConfig

    from segaug.generative.tokenizers import CLIP_VOCAB_SIZE, clip_vocab

    vocab = clip_vocab()
    return CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,  # SDXL reads hidden_states[-2]
        max_position_embeddings=77,
        projection_dim=TEXT_HIDDEN,
        hidden_act="gelu",
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )


def make_text_encoder():
    from transformers import CLIPTextModel

    return CLIPTextModel(text_encoder_config())


def make_text_encoder_2():
    from transformers import CLIPTextModelWithProjection

    return CLIPTextModelWithProjection(text_encoder_config())


def make_scheduler():
    """SDXL base's scheduler config (EulerDiscrete, scaled-linear betas, leading spacing)."""
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type="epsilon",
    )


def make_adapter():
    """T2I-Adapter-XL: pixel-unshuffle 16, four feature levels matching the tiny UNet."""
    from diffusers import T2IAdapter

    c0, c1, c2 = UNET_CHANNELS
    return T2IAdapter(
        in_channels=3,
        channels=[c0, c1, c2, c2],
        num_res_blocks=1,
        downscale_factor=16,
        adapter_type="full_adapter_xl",
    )


def make_controlnet():
    """SDXL ControlNet matching the tiny UNet; zero convolutions refilled (see module doc)."""
    from diffusers import ControlNetModel

    cfg = unet_config(4)
    for key in ("out_channels", "up_block_types", "sample_size"):
        cfg.pop(key)
    net = ControlNetModel(**cfg, conditioning_embedding_out_channels=(8, 8, 16, 16))
    with torch.no_grad():
        # He-normal conditioning embedding: with PyTorch's default init its 8 convolutions
        # shrink the sparse edge signal ~300x, and the prior would barely change the output
        for m in net.controlnet_cond_embedding.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0.0, math.sqrt(2.0 / m.weight[0].numel()))
                m.bias.zero_()
        for p in net.parameters():  # the remaining zero convolutions (controlnet_down/mid blocks)
            if p.ndim > 1 and not p.any():
                p.normal_(0.0, 0.3)
    return net


def _tokenizers():
    """Two tiny offline CLIP tokenizers (SDXL has ``tokenizer`` and ``tokenizer_2``)."""
    from transformers import CLIPTokenizer

    from segaug.generative.tokenizers import clip_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        path = clip_tokenizer(Path(tmp) / "tokenizer")
        return CLIPTokenizer.from_pretrained(path), CLIPTokenizer.from_pretrained(path)


def _base_components(seed: int, unet_in_channels: int = 4) -> dict:
    tokenizer, tokenizer_2 = _tokenizers()
    return dict(
        unet=_seeded(seed, lambda: make_unet(unet_in_channels)),
        vae=_seeded(seed + 1, make_vae),
        text_encoder=_seeded(seed + 2, make_text_encoder),
        text_encoder_2=_seeded(seed + 3, make_text_encoder_2),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=make_scheduler(),
    )


def make_pipeline(kind: str, seed: int = 0):
    """The tiny pipeline object of ``kind`` (in memory; :func:`build` saves it)."""
    from diffusers import (
        StableDiffusionXLAdapterPipeline,
        StableDiffusionXLControlNetPipeline,
        StableDiffusionXLInpaintPipeline,
    )

    if kind == "sdxl-adapter":
        parts = _base_components(seed)
        return StableDiffusionXLAdapterPipeline(**parts, adapter=_seeded(seed + 4, make_adapter))
    if kind == "sdxl-controlnet":
        parts = _base_components(seed)
        return StableDiffusionXLControlNetPipeline(
            **parts, controlnet=_seeded(seed + 4, make_controlnet), add_watermarker=False
        )
    if kind == "sdxl-inpaint":
        parts = _base_components(seed, unet_in_channels=9)
        return StableDiffusionXLInpaintPipeline(**parts, add_watermarker=False)
    raise SegaugError(f"unknown tiny SDXL kind {kind!r}; choose one of {', '.join(SDXL_KINDS)}")


def build(kind: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny pipeline ``kind`` and ``save_pretrained`` it into ``out_dir`` atomically.

    Returns ``out_dir``. The result loads with ``<PipelineClass>.from_pretrained(out_dir)``; the
    adapter / ControlNet also load alone from ``out_dir/adapter`` / ``out_dir/controlnet``.
    """
    if kind not in SDXL_KINDS:
        raise SegaugError(f"unknown tiny SDXL kind {kind!r}; choose one of {', '.join(SDXL_KINDS)}")
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        make_pipeline(kind, seed).save_pretrained(tmp)
    log.info("built tiny %s (seed %d) in %s", kind, seed, out_dir)
    return out_dir
