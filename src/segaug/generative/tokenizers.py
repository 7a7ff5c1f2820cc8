"""The tokenizers of the tiny models, built offline: byte-level vocabularies without merges
(tiny CLIP's for CLIP and SDXL, OPT's for BLIP-2). Used by :mod:`segaug.generative.tiny`,
:mod:`segaug.generative.tiny_sdxl`, :mod:`segaug.openvocab.tiny` and :mod:`segaug.vlm.tiny`."""

from __future__ import annotations

import json
from pathlib import Path

# Vocabulary size of the tiny CLIP tokenizer: 256 bytes, 256 bytes + "</w>", 2 special tokens.
CLIP_VOCAB_SIZE = 514
BOS_CLIP, EOS_CLIP = "<|startoftext|>", "<|endoftext|>"


def byte_chars() -> list[str]:
    """The 256 printable unicode characters that byte-level BPE uses for the 256 bytes.

    Same table as GPT-2's ``bytes_to_unicode``: printable Latin-1 bytes map to themselves,
    the others to code points from 256 on.
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def _write_bpe_files(out_dir: Path, vocab: dict[str, int]) -> tuple[Path, Path]:
    """Write ``vocab.json`` and an empty ``merges.txt`` (header only) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_file, merges_file = out_dir / "vocab.json", out_dir / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False))
    merges_file.write_text("#version: 0.2\n")
    return vocab_file, merges_file


def clip_vocab() -> dict[str, int]:
    """Tiny CLIP vocabulary: bytes, bytes + ``</w>``, then ``<|startoftext|>``, ``<|endoftext|>``."""
    chars = byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + [BOS_CLIP, EOS_CLIP]
    return {t: i for i, t in enumerate(tokens)}


def make_clip_tokenizer(model_max_length: int = 77):
    """An in-memory ``CLIPTokenizer`` over :func:`clip_vocab` (no merges); not saved."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=clip_vocab(), merges=[], model_max_length=model_max_length)


def clip_tokenizer(out_dir: str | Path, model_max_length: int = 77) -> Path:
    """Build a tiny CLIP tokenizer offline and ``save_pretrained`` it into ``out_dir``.

    ``CLIPTokenizer.from_pretrained(out_dir)`` loads it back; ids are < :data:`CLIP_VOCAB_SIZE`.
    ``vocab.json`` / ``merges.txt`` are written too, for code that wants the classic files.
    """
    out_dir = Path(out_dir)
    _write_bpe_files(out_dir, clip_vocab())
    make_clip_tokenizer(model_max_length).save_pretrained(out_dir)
    return out_dir


# OPT's special tokens, at OPT's ids (``facebook/opt-*``: <s>=0, <pad>=1, </s>=2, <unk>=3).
OPT_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def opt_vocab() -> dict[str, int]:
    """Tiny OPT vocabulary: OPT's 4 special tokens, then the 256 byte-level characters."""
    return {t: i for i, t in enumerate(list(OPT_SPECIALS) + byte_chars())}


def make_gpt2_tokenizer():
    """An in-memory byte-level BPE ``GPT2Tokenizer`` set up like OPT's (BOS ``</s>`` prepended)."""
    from transformers import GPT2Tokenizer

    return GPT2Tokenizer(
        vocab=opt_vocab(),
        merges=[],
        bos_token="</s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        add_bos_token=True,
    )


def gpt2_tokenizer(out_dir: str | Path) -> Path:
    """Build a tiny byte-level BPE tokenizer for OPT (BLIP-2's language model) into ``out_dir``."""
    out_dir = Path(out_dir)
    _write_bpe_files(out_dir, opt_vocab())
    make_gpt2_tokenizer().save_pretrained(out_dir)
    return out_dir
