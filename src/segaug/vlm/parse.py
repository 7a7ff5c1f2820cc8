"""Strict parsing of a VLM's placement answer (schema in :mod:`segaug.vlm.prompt`).

:func:`parse_points` accepts exactly one of

- a bare JSON object, surrounding whitespace allowed: ``{"points": [{"x": 3, "y": 4}]}``;
- the same object alone inside one fenced code block: ```` ```json ... ``` ```` (or a bare
  ```` ``` ```` fence), with nothing before or after the block.

Anything else fails: prose around the JSON, several objects, extra keys at any level, missing
keys, ``NaN``/``Infinity``, duplicate keys, booleans or strings as coordinates, non-integral
numbers. **Integral floats are accepted** (``412.0`` reads as ``412``): that is what JSON Schema
Draft 7 means by ``"type": "integer"`` (a number with a zero fractional part), and models do
write them; ``412.5`` is rejected, not rounded, because a model that answers in fractions
probably uses another coordinate convention (e.g. 0-1 normalised) and rounding would hide that.

Parsing never raises: a failed parse returns a :class:`ParseResult` with ``error`` set (a
message starting with ``"parse error: "``) and no points. Points outside
``[0, width) x [0, height)`` are dropped and counted in ``dropped_outside``; the remaining ones
keep the model's order and are truncated to ``max_points``. A well-formed answer with no points
(``{"points": []}``) is not an error: the model says nothing fits.

:func:`parse_answer` reads, besides this schema, the answers real models give when asked in
their own words (Qwen2.5-VL grounding, Gemini pointing; ``vlm.answer_format``) in the
coordinates they use (``vlm.coordinates``), and maps them to pixels of the image sent. Prose
with numbers is still a parse error: nothing is guessed from free text.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from jsonschema import Draft7Validator

#: The answer schema (JSON Schema Draft 7).
POINTS_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "points": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                "required": ["x", "y"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["points"],
    "additionalProperties": False,
}
_VALIDATOR = Draft7Validator(POINTS_SCHEMA)

# One fenced block and nothing else: ```json\n...\n``` (language tag optional, case-insensitive).
_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(?P<body>.*?)\n?[ \t]*```\Z", re.DOTALL | re.IGNORECASE)
_SNIPPET = 80


@dataclass(frozen=True)
class ParseResult:
    """Points (x, y) inside the image, how many were dropped outside it, and why parsing failed."""

    points: list[tuple[int, int]] = field(default_factory=list)
    dropped_outside: int = 0
    error: str | None = None
    convention: str | None = None  # what was read: family, shape, coordinates (parse_answer)


def _snippet(text: str) -> str:
    return repr(text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else ""))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"duplicate key(s) {dup}")
    return dict(pairs)


def unwrap(text: str) -> str:
    """The JSON text: ``text`` stripped, and unfenced if it is exactly one fenced block."""
    text = text.strip()
    m = _FENCE.match(text)
    return m.group("body").strip() if m else text


def load_strict(text: str):
    """``json.loads`` that rejects NaN/Infinity and duplicate keys (raises ValueError)."""
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)


def schema_error(obj) -> str | None:
    """The first schema violation of ``obj`` as ``at points/0/x: ...``, or None if it matches."""
    err = next(iter(sorted(_VALIDATOR.iter_errors(obj), key=lambda e: list(e.absolute_path))), None)
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "top level"
    return f"at {where}: {err.message}"


def parse_points(text: str, width: int, height: int, max_points: int) -> ParseResult:
    """Parse a placement answer strictly (module docstring); never raises."""
    if not isinstance(text, str):
        return ParseResult(error=f"parse error: expected text, got {type(text).__name__}")
    body = unwrap(text)
    try:
        obj = load_strict(body)
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        return ParseResult(error=f"parse error: not valid JSON ({e}) in {_snippet(text)}")
    problem = schema_error(obj)
    if problem:
        return ParseResult(error=f"parse error: schema mismatch {problem}")
    inside, dropped = [], 0
    for p in obj["points"]:
        x, y = int(p["x"]), int(p["y"])  # integral floats (Draft 7 integers) become ints
        if 0 <= x < width and 0 <= y < height:
            inside.append((x, y))
        else:
            dropped += 1
    return ParseResult(points=inside[: max(int(max_points), 0)], dropped_outside=dropped)


# ------------------------------------------------------------------ native answer formats

#: ``vlm.answer_format`` values; ``auto`` recognises every shape below.
ANSWER_FORMATS = ("auto", "segaug", "qwen", "gemini")
#: ``vlm.coordinates`` values: what the numbers of an answer mean.
COORDINATES = ("pixels", "resized_pixels", "norm1000", "norm1")
#: The convention each family answers in unless ``vlm.coordinates`` says otherwise.
DEFAULT_COORDINATES = {"segaug": "pixels", "qwen": "resized_pixels", "gemini": "norm1000"}

# Qwen2.5-VL's image processor (qwen-vl-utils ``vision_process.py``, and the checkpoints'
# preprocessor_config.json): 14 px patches merged 2x2, so sides are multiples of 28.
QWEN_FACTOR = 28
QWEN_MIN_PIXELS = 4 * 28 * 28  # 3136
QWEN_MAX_PIXELS = 16384 * 28 * 28  # 12845056


def smart_resize(
    height: int,
    width: int,
    factor: int = QWEN_FACTOR,
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
) -> tuple[int, int]:
    """(height, width) of the image as Qwen2.5-VL's processor resizes it (qwen-vl-utils' rule).

    Both sides become multiples of ``factor`` (rounded), keeping the aspect ratio, with the
    pixel count brought into ``[min_pixels, max_pixels]``. Qwen2.5-VL answers grounding
    prompts in absolute pixels of this resized image.
    """
    height, width, factor = int(height), int(width), int(factor)
    if min(height, width) <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pair(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_is_num(c) for c in v)


def _quad(v) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(_is_num(c) for c in v)


# key of an item -> (family, arity, how to read (x, y) from the list)
_NATIVE_KEYS = {
    "point_2d": ("qwen", 2, lambda v: (v[0], v[1])),  # [x, y]
    "bbox_2d": ("qwen", 4, lambda v: ((v[0] + v[2]) / 2, (v[1] + v[3]) / 2)),  # [x1, y1, x2, y2]
    "point": ("gemini", 2, lambda v: (v[1], v[0])),  # [y, x]
    "box_2d": ("gemini", 4, lambda v: ((v[1] + v[3]) / 2, (v[0] + v[2]) / 2)),  # [ymin, xmin, ymax, xmax]
}


def _native_item(item, k: int) -> tuple[str, str, tuple[float, float]] | str:
    """(family, key, raw (x, y)) of one Qwen / Gemini item, or an error text."""
    if not isinstance(item, dict):
        return f"at {k}: expected an object, got {type(item).__name__}"
    keys = [key for key in _NATIVE_KEYS if key in item]
    if len(keys) != 1:
        return f"at {k}: expected exactly one of {', '.join(_NATIVE_KEYS)}, got keys {sorted(item)}"
    family, arity, read = _NATIVE_KEYS[keys[0]]
    value = item[keys[0]]
    if not (_pair(value) if arity == 2 else _quad(value)):
        return f"at {k}/{keys[0]}: expected {arity} numbers, got {value!r}"[:160]
    return family, keys[0], read(value)


def _shape(obj) -> tuple[str, str, list[tuple[float, float]]] | str:
    """(family, shape name, raw points) of a decoded answer, or an error text."""
    if isinstance(obj, dict) and "points" in obj:
        if set(obj) != {"points"}:
            return f"at top level: unexpected key(s) {sorted(set(obj) - {'points'})}"
        pts = obj["points"]
        if isinstance(pts, list) and pts and all(_pair(p) for p in pts):
            return "segaug", "points[[x,y]]", [(p[0], p[1]) for p in pts]
        problem = schema_error(obj)
        if problem:
            return problem
        return "segaug", "points[{x,y}]", [(p["x"], p["y"]) for p in pts]
    if isinstance(obj, dict):
        obj = [obj]  # one native item on its own
    if not isinstance(obj, list):
        return f"at top level: expected an object or a list, got {type(obj).__name__}"
    if not obj:
        return "segaug", "[]", []
    if all(_pair(p) for p in obj):
        return "segaug", "[[x,y]]", [(p[0], p[1]) for p in obj]
    items = [_native_item(item, k) for k, item in enumerate(obj)]
    bad = next((i for i in items if isinstance(i, str)), None)
    if bad:
        return bad
    families = sorted({i[0] for i in items})
    if len(families) > 1:
        return f"at top level: items mix the {' and '.join(families)} formats"
    keys = "+".join(sorted({i[1] for i in items}))
    return families[0], keys, [i[2] for i in items]


def _to_pixels(v: float, size: int, coordinates: str, resized: int) -> int | None:
    """One coordinate in pixels of the original image, or None outside it."""
    if coordinates == "pixels":
        scale, top = 1.0, size
    else:
        top = {"resized_pixels": resized, "norm1000": 1000, "norm1": 1}[coordinates]
        scale = size / top
    if v < 0 or v > top or (coordinates == "pixels" and v >= top):
        return None
    return min(int(math.floor(v * scale)), size - 1)


def parse_answer(
    text: str,
    width: int,
    height: int,
    max_points: int,
    answer_format: str = "auto",
    coordinates: str | None = None,
    resized: tuple[int, int] | None = None,
) -> ParseResult:
    """Parse an answer in any format real models produce; never raises (module docstring).

    ``answer_format``: ``segaug`` (``{"points": [{"x", "y"}]}``, ``[[x, y], ...]``,
    ``{"points": [[x, y], ...]}``), ``qwen`` (a list of ``{"point_2d": [x, y]}`` or
    ``{"bbox_2d": [x1, y1, x2, y2]}``, a box giving its centre), ``gemini`` (a list of
    ``{"point": [y, x]}`` or ``{"box_2d": [ymin, xmin, ymax, xmax]}``), or ``auto`` (any of
    them, told apart by their keys). Other keys of a native item (``label``) are ignored.
    ``coordinates`` (default: the family's own, :data:`DEFAULT_COORDINATES`): ``pixels`` of
    the image sent, ``resized_pixels`` of the image as the model's processor resized it
    (``resized`` = its (width, height), default :func:`smart_resize` with Qwen's settings),
    ``norm1000`` (0-1000) or ``norm1`` (0-1). Points are mapped to pixels of the image sent;
    those outside it are dropped and counted. ``ParseResult.convention`` records what was
    read, e.g. ``qwen point_2d resized_pixels 84x56``.
    """
    if answer_format not in ANSWER_FORMATS:
        return ParseResult(error=f"parse error: unknown answer format {answer_format!r}")
    if coordinates is not None and coordinates not in COORDINATES:
        return ParseResult(error=f"parse error: unknown coordinates {coordinates!r}")
    if not isinstance(text, str):
        return ParseResult(error=f"parse error: expected text, got {type(text).__name__}")
    try:
        obj = load_strict(unwrap(text))
    except ValueError as e:
        return ParseResult(error=f"parse error: not valid JSON ({e}) in {_snippet(text)}")
    shape = _shape(obj)
    if isinstance(shape, str):
        return ParseResult(error=f"parse error: schema mismatch {shape}")
    family, name, raw = shape
    if answer_format != "auto" and family != answer_format and name != "[]":
        return ParseResult(
            error=f"parse error: the answer is in the {family} format ({name}) but vlm.answer_format is {answer_format}"
        )
    if name == "[]" and answer_format in DEFAULT_COORDINATES:
        family = answer_format
    coords = coordinates or DEFAULT_COORDINATES[family]
    rw, rh = resized if resized is not None else smart_resize(height, width)[::-1]
    inside, dropped = [], 0
    for x, y in raw:
        px, py = _to_pixels(x, width, coords, rw), _to_pixels(y, height, coords, rh)
        if px is None or py is None:
            dropped += 1
        else:
            inside.append((px, py))
    convention = f"{family} {name} {coords}" + (f" {rw}x{rh}" if coords == "resized_pixels" else "")
    return ParseResult(points=inside[: max(int(max_points), 0)], dropped_outside=dropped, convention=convention)
