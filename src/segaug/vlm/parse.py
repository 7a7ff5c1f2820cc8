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
"""

from __future__ import annotations

import json
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
