"""A tiny random-weight Qwen2.5-VL, built offline and saved like the real checkpoint.

:func:`build_tiny_qwen` writes a directory that loads with exactly the classes the real
``Qwen/Qwen2.5-VL-7B-Instruct`` loads with (``Qwen2_5_VLForConditionalGeneration`` and
``AutoProcessor``), so :class:`segaug.vlm.providers.LocalQwenProvider` runs its real code
path end to end in tests and in the demo, without the hub and without a GPU.

What is tiny about it:

- the language model has hidden size 64, 1 layer, 4 attention heads (head dim 16, M-RoPE
  sections ``[2, 3, 3]``) and a vocabulary of 256 byte-level characters plus Qwen's special
  tokens (:data:`SPECIAL_TOKENS`);
- the vision tower has hidden size 32, 1 block, patch size 4 and merge size 2, so a 64x64
  image becomes 16x16 patches, merged into 8x8 = 64 image tokens;
- the image processor resizes every image to between 64 and 64x64 pixels (multiples of 8).

The tokenizer is a byte-level BPE with no merges (every character is one token), built from a
vocabulary written here, with Qwen's special tokens and Qwen2-VL's chat template. Generated
text is restricted to printable ASCII (``suppress_tokens`` in ``generation_config.json``), so a
random model answers with readable garbage, which never parses as a placement answer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from segaug.generative.tokenizers import byte_chars
from segaug.io import atomic_path

log = logging.getLogger(__name__)

#: Qwen's special tokens, in the order they get ids after the 256 byte characters.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Qwen2-VL / Qwen2.5-VL's chat template (as shipped with the Instruct checkpoints).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

PATCH_SIZE = 4
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
MIN_PIXELS = 8 * 8
MAX_PIXELS = 64 * 64


def qwen_vocab() -> dict[str, int]:
    """The 256 byte-level characters (ids 0-255), then :data:`SPECIAL_TOKENS`."""
    return {t: i for i, t in enumerate(byte_chars() + list(SPECIAL_TOKENS))}


def make_qwen_tokenizer():
    """An in-memory ``Qwen2Tokenizer`` over :func:`qwen_vocab` (no merges), with the chat template."""
    from transformers import Qwen2Tokenizer

    tok = Qwen2Tokenizer(
        vocab=qwen_vocab(),
        merges=[],
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=32768,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def make_qwen_processor():
    """Tiny ``Qwen2_5_VLProcessor``: small patches, 64-4096 pixel images, the tiny tokenizer."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    sizes = dict(patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, temporal_patch_size=TEMPORAL_PATCH_SIZE)
    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    image_processor = Qwen2VLImageProcessor(size=size, **sizes)
    video_processor = Qwen2VLVideoProcessor(size=size, **sizes)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=make_qwen_tokenizer(),
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def qwen_config(vocab: dict[str, int]):
    """``Qwen2_5_VLConfig``: text hidden 64 x 1 layer, vision hidden 32 x 1 block, patch 4."""
    from transformers import Qwen2_5_VLConfig

    vision = dict(
        depth=1,
        hidden_size=32,
        intermediate_size=64,
        num_heads=4,
        patch_size=PATCH_SIZE,
        spatial_merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
        window_size=PATCH_SIZE * MERGE_SIZE * 2,
        out_hidden_size=64,
        fullatt_block_indexes=[0],
    )
    text = dict(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=vocab["<|endoftext|>"],
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
    )


def printable_ascii_only(vocab: dict[str, int], eos: str = "<|im_end|>") -> list[int]:
    """Ids of every token except printable ASCII bytes and ``eos``: the tiny model must not emit them."""
    chars = byte_chars()
    keep = {vocab[chars[b]] for b in range(32, 127)} | {vocab[eos]}
    return [i for i in range(len(vocab)) if i not in keep]


def _build(out: Path, seed: int) -> None:
    from transformers import Qwen2_5_VLForConditionalGeneration

    vocab = qwen_vocab()
    config = qwen_config(vocab)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    gen = model.generation_config
    gen.suppress_tokens = printable_ascii_only(vocab)
    gen.eos_token_id = [vocab["<|im_end|>"], vocab["<|endoftext|>"]]
    gen.pad_token_id = vocab["<|endoftext|>"]
    gen.do_sample = False
    model.save_pretrained(out)
    make_qwen_processor().save_pretrained(out)


def build_tiny_qwen(out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny Qwen2.5-VL (model + processor) into ``out_dir`` and return it.

    Same ``seed`` gives the same weights; the caller's global torch RNG is left untouched.
    ``out_dir`` appears only once complete (written beside it, then renamed; an existing one is
    replaced). Load it with ``LocalQwenProvider(str(out_dir))`` or with
    ``Qwen2_5_VLForConditionalGeneration.from_pretrained(out_dir)`` + ``AutoProcessor``.
    """
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        _build(tmp, seed)
    log.info("built tiny Qwen2.5-VL (seed %d) in %s", seed, out_dir)
    return out_dir
