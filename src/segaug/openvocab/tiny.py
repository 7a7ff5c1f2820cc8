"""Tiny random-weight twins of the open-vocabulary models, for the demo and the tests.

Like :mod:`segaug.generative.tiny`, each builder makes the real transformers class from a
small config, with random weights, and writes it with ``save_pretrained`` together with its
processor; the surface sources then load the directory exactly as they load the real hub
model (``from_pretrained(path)``), offline. Same seed, same weights; the directory appears
only once complete (:func:`segaug.io.atomic_path`).

- :func:`build_tiny_clipseg`: ``CLIPSegForImageSegmentation`` (32x32 input, hidden size 32,
  2 layers per tower) + ``CLIPSegProcessor`` with the byte-level tiny CLIP tokenizer, for
  :class:`segaug.openvocab.clipseg.ClipSegSurfaces`.
- :func:`build_tiny_sam`: SAM 2 (``Sam2Model``: Hiera backbone 12-96 channels, 64x64 input,
  prompt encoder/mask decoder of width 32) + ``Sam2Processor``, for
  :class:`segaug.openvocab.sam_clip.SamClipSurfaces`. Its CLIP is the tiny CLIP of
  ``segaug.generative.tiny.build_tiny("clip", dir)``.

Random weights give random surfaces; the point is the real loading and inference path.
"""

from __future__ import annotations

import logging
from pathlib import Path

from segaug.generative.tiny import seeded
from segaug.generative.tokenizers import BOS_CLIP, CLIP_VOCAB_SIZE, EOS_CLIP, clip_vocab, make_clip_tokenizer
from segaug.io import atomic_path

log = logging.getLogger(__name__)

CLIPSEG_IMAGE_SIZE = 32
SAM_IMAGE_SIZE = 64
SAM_INIT_RANGE = 0.5


# --------------------------------------------------------------------------------- CLIPSeg


def clipseg_config():
    """``CLIPSegConfig``: hidden size 32, 2 layers per tower, 32x32 images (4x4 patches of 8)."""
    from transformers import CLIPSegConfig, CLIPSegTextConfig, CLIPSegVisionConfig

    vocab = clip_vocab()
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    text = CLIPSegTextConfig(
        **small,
        vocab_size=CLIP_VOCAB_SIZE,
        max_position_embeddings=77,
        bos_token_id=vocab[BOS_CLIP],
        eos_token_id=vocab[EOS_CLIP],
        pad_token_id=vocab[EOS_CLIP],
    )
    vision = CLIPSegVisionConfig(**small, image_size=CLIPSEG_IMAGE_SIZE, patch_size=8)
    return CLIPSegConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        projection_dim=32,
        extract_layers=[0, 1],
        reduce_dim=16,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )


def clipseg_processor():
    """``CLIPSegProcessor``: a 32x32 ``ViTImageProcessor`` (as CIDAS's) and the tiny CLIP tokenizer."""
    from transformers import CLIPSegProcessor, ViTImageProcessor

    size = {"height": CLIPSEG_IMAGE_SIZE, "width": CLIPSEG_IMAGE_SIZE}
    image_processor = ViTImageProcessor(size=size, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    return CLIPSegProcessor(image_processor=image_processor, tokenizer=make_clip_tokenizer())


def build_tiny_clipseg(out_dir: str | Path, seed: int = 0) -> Path:
    """Build a tiny random-weight CLIPSeg + processor into ``out_dir``; return ``out_dir``."""
    from transformers import CLIPSegForImageSegmentation

    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        model = seeded(seed, lambda: CLIPSegForImageSegmentation(clipseg_config()))
        model.save_pretrained(tmp)
        clipseg_processor().save_pretrained(tmp)
    log.info("built tiny CLIPSeg (seed %d) in %s", seed, out_dir)
    return out_dir


# ----------------------------------------------------------------------------------- SAM 2


def sam_config():
    """``Sam2Config`` for 64x64 inputs: Hiera stages of 12/24/48/96 channels, FPN and decoder width 32.

    Feature maps are 16x16, 8x8, 4x4 (strides 4, 8, 16); low-resolution masks are 16x16. The
    only global-attention block (3) is not the first block of a stage: transformers' Hiera
    divides by the window size there when a stage pools its queries. Weights are drawn with
    ``initializer_range`` :data:`SAM_INIT_RANGE` (0.5, not 0.02): at 0.02 a random SAM 2 predicts
    near-zero logits everywhere, so no mask would pass the default IoU/stability filters; at
    0.5 it gives confident, varied masks that do, and the tests run with the real defaults.
    """
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    s = SAM_IMAGE_SIZE
    backbone = Sam2HieraDetConfig(
        hidden_size=12,
        image_size=[s, s],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[12, 24, 48, 96],
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[8, 4, 4, 2],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[4, 4],
        initializer_range=SAM_INIT_RANGE,
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[96, 48, 24, 12],
        backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
        fpn_hidden_size=32,
        initializer_range=SAM_INIT_RANGE,
    )
    prompt = Sam2PromptEncoderConfig(hidden_size=32, image_size=s, patch_size=16, mask_input_channels=8)
    decoder = Sam2MaskDecoderConfig(
        hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=4, iou_head_hidden_dim=32
    )
    return Sam2Config(
        vision_config=vision,
        prompt_encoder_config=prompt,
        mask_decoder_config=decoder,
        initializer_range=SAM_INIT_RANGE,
    )


def sam_processor():
    """``Sam2Processor`` resizing images to 64x64 (as the real one does to 1024x1024)."""
    from transformers import Sam2ImageProcessor, Sam2Processor

    s = SAM_IMAGE_SIZE
    size, mask_size = {"height": s, "width": s}, {"height": s // 4, "width": s // 4}
    image_processor = Sam2ImageProcessor(size=size, mask_size=mask_size)
    return Sam2Processor(image_processor=image_processor)


def build_tiny_sam(out_dir: str | Path, seed: int = 0) -> Path:
    """Build a tiny random-weight SAM 2 (``Sam2Model``) + ``Sam2Processor`` into ``out_dir``."""
    from transformers import Sam2Model

    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        model = seeded(seed, lambda: Sam2Model(sam_config()))
        model.save_pretrained(tmp)
        sam_processor().save_pretrained(tmp)
    log.info("built tiny SAM 2 (seed %d) in %s", seed, out_dir)
    return out_dir
