"""The placement prompt: OpenAI chat-completions messages holding the photo and its label.

:func:`build_messages` asks a vision-language model where an object of a given class and size
could be pasted into a training image. The model sees two images (the photo, then the label
drawn with one colour per class) and a text that names the legend (colour -> class), the
object, its size, the image size and, when given, the surfaces the object may stand on.

The answer format is fixed (:data:`ANSWER_SCHEMA_TEXT`)::

    {"points": [{"x": 412, "y": 230}, {"x": 97, "y": 301}]}

Each point is the **centre** of the pasted object's bounding box, in pixels of the photo as
sent: origin at the top-left corner, x to the right, y downwards, 0 <= x < width and
0 <= y < height. :mod:`segaug.vlm.parse` checks answers against exactly this schema.

:func:`prompt_text` and :func:`image_digest` give the parts of a request that the response
cache keys on (:mod:`segaug.vlm.cache`): the text, and a hash of the raw pixel arrays.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from segaug.errors import SegaugError

ANSWER_SCHEMA_TEXT = '{"points": [{"x": <int>, "y": <int>}, ...]}'

#: What each ``vlm.answer_format`` asks for: (schema text, coordinate convention, empty answer).
#: ``qwen`` and ``gemini`` ask in the model's own grounding format (Qwen2.5-VL cookbook
#: "spatial understanding"; Gemini image understanding), which those models answer most reliably.
ANSWER_TEXTS = {
    "segaug": (
        ANSWER_SCHEMA_TEXT,
        "in pixels of the photo: origin at the top-left corner, x to the right, y downwards, "
        "0 <= x < image width, 0 <= y < image height. x and y are integers.",
        '{"points": []}',
    ),
    "qwen": (
        '[{"point_2d": [x, y], "label": "<class>"}, ...]',
        "as absolute pixel coordinates [x, y] of the photo as you see it: origin at the top-left corner.",
        "[]",
    ),
    "gemini": (
        '[{"point": [y, x], "label": "<class>"}, ...]',
        "as [y, x] normalized to 0-1000: origin at the top-left corner, (1000, 1000) the bottom-right.",
        "[]",
    ),
}


def system_prompt(answer_format: str = "segaug") -> str:
    """The system message: the task and the answer format (``auto`` asks for ours)."""
    schema, convention, empty = ANSWER_TEXTS.get(answer_format, ANSWER_TEXTS["segaug"])
    return (
        "You help augment a semantic segmentation dataset by pasting objects into photos. "
        "You get a photo and its colour-coded segmentation mask (same size, one colour per class). "
        "Propose where an object of the given class and size could realistically be placed: it must "
        "stand on an allowed surface, not float, not overlap other objects, and match the scene's "
        "perspective.\n"
        f"Each point is the CENTRE of the object's bounding box, {convention}\n"
        f"Answer with exactly one JSON {'object' if empty.startswith('{') else 'list'} and nothing else (no prose, no explanation), in this "
        f"schema: {schema}\n"
        f"Order the points from best to worst. If no place fits, answer {empty}."
    )


def _check_rgb(name: str, arr: np.ndarray) -> None:
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        got = f"{arr.dtype} array of shape {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise SegaugError(f"{name}: expected a uint8 HxWx3 RGB array, got {got}")


def _check_legend(legend: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, int, int]]:
    if not legend:
        raise SegaugError("legend: give the colour of at least one class (class name -> (r, g, b))")
    out = {}
    for name, colour in legend.items():
        rgb = tuple(int(c) for c in colour)
        if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
            raise SegaugError(f"legend[{name!r}]: expected an (r, g, b) colour with values 0-255, got {colour!r}")
        out[str(name)] = rgb
    return out


def png_data_uri(arr: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a uint8 HxWx3 array (lossless, so the mask keeps its colours)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def legend_lines(legend: Mapping[str, tuple[int, int, int]]) -> str:
    """One line per class: ``- rgb(128, 64, 128) = road``."""
    return "\n".join(f"- rgb({r}, {g}, {b}) = {name}" for name, (r, g, b) in legend.items())


def user_text(
    legend: Mapping[str, tuple[int, int, int]],
    class_name: str,
    size: tuple[int, int],
    image_size: tuple[int, int],
    n_points: int,
    surfaces: Sequence[str] | None,
    answer_format: str = "segaug",
) -> str:
    """The text of the user message (everything but the two images)."""
    (w, h), (W, H) = size, image_size
    lines = [
        "Image 1 is the photo, image 2 its colour-coded segmentation mask.",
        "Mask legend (colour = class):",
        legend_lines(legend),
        f"Image size: {W} x {H} pixels (width x height).",
        f"Object to paste: one {class_name}, {w} x {h} pixels (width x height).",
    ]
    if surfaces:
        lines.append(
            f"The {class_name} must stand on: {', '.join(surfaces)}. Its bottom edge "
            f"(centre y + {h // 2} px) must lie on one of these surfaces."
        )
    lines.append(
        f"Give up to {n_points} candidate centre points, best first, as JSON only: "
        f"{ANSWER_TEXTS.get(answer_format, ANSWER_TEXTS['segaug'])[0]}"
    )
    return "\n".join(lines)


def build_messages(
    image: np.ndarray,
    mask_rgb: np.ndarray,
    legend: Mapping[str, tuple[int, int, int]],
    class_name: str,
    size: tuple[int, int],
    n_points: int = 5,
    surfaces: Sequence[str] | None = None,
    image_url: Callable[[np.ndarray], str] = png_data_uri,
    answer_format: str = "segaug",
) -> list[dict]:
    """OpenAI chat-completions ``messages`` asking where to paste one ``class_name`` object.

    ``image`` is the photo and ``mask_rgb`` its label drawn with the ``legend`` colours (both
    uint8 HxWx3 RGB, same size); ``size`` is the object's (width, height) in pixels;
    ``surfaces`` (class names of the legend) are where it may stand. Returns a system message
    (task and answer schema) and a user message (photo, mask, then the text). Raises
    :class:`SegaugError` for inputs that cannot make a valid prompt.

    ``image_url`` turns an array into the URL sent (default: a PNG data URI). The client passes
    a stub to get :func:`prompt_text` for its cache key without encoding the images.
    ``answer_format`` (``segaug``/``auto``, ``qwen``, ``gemini``): the format the answer is asked in.
    """
    _check_rgb("image", image)
    _check_rgb("mask_rgb", mask_rgb)
    if image.shape != mask_rgb.shape:
        raise SegaugError(
            f"mask_rgb is {mask_rgb.shape[1]}x{mask_rgb.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}; pass the label of this image"
        )
    legend = _check_legend(legend)
    if not class_name:
        raise SegaugError("class_name: name the class of the object to paste")
    w, h = (int(v) for v in size)
    if w <= 0 or h <= 0:
        raise SegaugError(f"size: the object's (width, height) must be positive, got {tuple(size)}")
    if int(n_points) < 1:
        raise SegaugError(f"n_points must be at least 1, got {n_points}")
    surfaces = list(surfaces or [])
    unknown = [s for s in surfaces if s not in legend]
    if unknown:
        raise SegaugError(
            f"surfaces {unknown} are not classes of the legend, so the model cannot see them in "
            f"the mask; legend classes: {', '.join(legend)}"
        )
    H, W = image.shape[:2]
    text = user_text(legend, class_name, (w, h), (W, H), int(n_points), surfaces, answer_format)
    return [
        {"role": "system", "content": system_prompt(answer_format)},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image_url(image)}},
                {"type": "image_url", "image_url": {"url": image_url(mask_rgb)}},
                {"type": "text", "text": text},
            ],
        },
    ]


def prompt_text(messages: list[dict]) -> str:
    """The text of ``messages`` (role, text parts, ``[image]`` for each image), for keys and logs.

    Images are left out (their data URIs are large; :func:`image_digest` covers the pixels),
    but their positions are kept so that reordering the parts changes the text.
    """
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            parts = [content]
        else:
            parts = [p.get("text", "") if p.get("type") == "text" else f"[{p.get('type', '?')}]" for p in content or []]
        out.append(f"{m.get('role', '?')}: " + "\n".join(parts))
    return "\n\n".join(out)


def image_digest(*arrays: np.ndarray) -> str:
    """sha256 (hex) over the dtype, shape and raw bytes of each array, in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()
