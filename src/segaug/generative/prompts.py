"""Text prompts for the generator: the paper's Table 5.

Three modes, for an image with caption ``P_g`` (BLIP-2) and labelled classes ``c1 … cM``:

- ``caption``:  ``P_g``                            ("a room with a table and a laptop on it")
- ``classes``:  ``"a photo of c1, …, cM"``          ("a photo of sofa, chair, dining table")
- ``appended``: ``"P_g; c1, …, cM"`` — Class-Prompt Appending (Section 3.2.1), the paper's
  default: the caption gives the layout, the appended names make sure every labelled class is
  asked for even when the caption omits it (Figure 2).

Class names come from the dataset's class table (``classes.json``), in class-index order;
background and ignore are never named.
"""

from __future__ import annotations

from collections.abc import Sequence

from segaug.errors import SegaugError

PROMPT_MODES = ("caption", "classes", "appended")


def build_prompt(mode: str, caption: str, class_names: Sequence[str]) -> str:
    """The prompt of one image for ``mode`` (see the module docstring)."""
    if mode not in PROMPT_MODES:
        raise SegaugError(f"unknown prompt mode {mode!r}; known: {', '.join(PROMPT_MODES)}")
    caption = " ".join(str(caption).split()).rstrip(" .;,")
    names = ", ".join(class_names)
    if mode == "classes" or (mode == "appended" and not caption):
        return f"a photo of {names}" if names else "a photo"
    if mode == "caption" or not names:
        return caption
    return f"{caption}; {names}"


def image_class_names(
    class_ids: Sequence[int], names: Sequence[str], exclude: Sequence[str] = ("background",)
) -> list[str]:
    """Names of the classes in an image (index order), without ``exclude`` (background)."""
    out = []
    for c in sorted(set(int(c) for c in class_ids)):
        if c >= len(names):
            raise SegaugError(f"class index {c} is not in the class table ({len(names)} classes)")
        if names[c] not in exclude:
            out.append(names[c])
    return out
