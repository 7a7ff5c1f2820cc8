"""The options of the paste methods: each one declared once, with its type, bounds and default.

An :class:`Option` is the one source of an option: ``scripts/paste.py`` turns a method's config
block (``paste.<method>``) into an options object with it, and the workflow's config schema
gets the method's block from it (:func:`segaug.paste.methods.method_schema`), so the schema's
``default:`` values are the ones the code uses. Every method has the shared options
(:data:`SHARED_OPTIONS`); a method's registry entry adds its own and may change a shared
default (SIGtor: 2-4 objects, scale 0.5-2, Poisson blending).

An unknown key or a bad value is one SegaugError naming ``paste.<method>.<key>``. Standard
library only: the Snakemake process reads these declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, make_dataclass, replace

from segaug.errors import SegaugError

BLENDS = ("hard", "feather", "poisson")
IMAGE_FORMATS = ("source", "png", "jpg")

# Option types: the JSON-schema type of the value ("pair": [min, max] of numbers; "int_pair": of
# integers) and the Python type the option object holds.
_PY = {"integer": int, "number": float, "string": str, "boolean": bool}


@dataclass(frozen=True)
class Option:
    """One option of a paste method: its default, type, bounds or choices, and what it does."""

    default: object
    type: str  # integer | number | string | boolean | pair | int_pair
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # pair: 0 < min instead of 0 <= min
    choices: tuple = ()
    description: str = ""

    def __post_init__(self):
        if self.type not in (*_PY, "pair", "int_pair"):
            raise ValueError(f"Option type {self.type!r}; use one of {', '.join((*_PY, 'pair', 'int_pair'))}")

    def with_default(self, default) -> Option:
        return replace(self, default=default)

    def schema(self) -> dict:
        """This option as a JSON-schema property of the method's block."""
        if self.type in ("pair", "int_pair"):
            item = {"type": "integer" if self.type == "int_pair" else "number"}
            out = {"type": "array", "items": item, "minItems": 2, "maxItems": 2}
        elif self.choices:
            out = {"enum": list(self.choices)}
        else:
            out = {"type": self.type}
            if self.minimum is not None:
                out["minimum"] = self.minimum
            if self.maximum is not None:
                out["maximum"] = self.maximum
        out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        if self.description:
            out["description"] = self.description
        return out

    def cast(self, key: str, value):
        """``value`` as this option's type (a given float stays a float, as on the command line)."""
        if self.type in ("pair", "int_pair"):
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise ValueError(f"{key} must be a [min, max] pair, got {value!r}")
            item = int if self.type == "int_pair" else float
            return tuple(item(v) for v in value)
        if self.type == "number" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.type == "integer" and isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, _PY[self.type]) or (self.type != "boolean" and isinstance(value, bool)):
            raise ValueError(f"{key} must be of type {self.type}, got {value!r}")
        return value

    def check(self, where: str, key: str, value) -> None:
        """One SegaugError naming ``where.key`` for a value outside the bounds or choices."""
        if self.type in ("pair", "int_pair"):
            lo, hi = value
            bound = self.minimum if self.minimum is not None else float("-inf")
            ok_lo = lo > bound if self.exclusive_minimum else lo >= bound
            if not (ok_lo and lo <= hi):
                rel = "<" if self.exclusive_minimum else "<="
                raise SegaugError(f"{where}.{key} must be [min, max] with {bound:g} {rel} min <= max, got {[lo, hi]}")
            return
        if self.choices and value not in self.choices:
            raise SegaugError(f"{where}.{key}: {value!r}; use one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum:
            raise SegaugError(f"{where}.{key} must be >= {self.minimum:g}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise SegaugError(f"{where}.{key} must be <= {self.maximum:g}, got {value}")


SHARED_OPTIONS: dict[str, Option] = {
    "copies": Option(1, "integer", minimum=1, description="pasted copies of each source image"),
    "objects_per_image": Option((1, 3), "int_pair", minimum=0, description="(min, max) objects drawn per copy"),
    "scale_range": Option((0.75, 1.25), "pair", minimum=0, exclusive_minimum=True, description="object scale range"),
    "flip_prob": Option(0.5, "number", minimum=0, maximum=1, description="horizontal flip probability per object"),
    "blend": Option("feather", "string", choices=BLENDS, description="hard | feather | poisson"),
    # a given value is a float, the default the int 2 as the command line always gave it
    # (summary.json records it: same bytes as before)
    "feather_px": Option(2, "number", minimum=0, description="feather width (blend: feather)"),
    "image_format": Option(
        "source", "string", choices=IMAGE_FORMATS, description="pasted images: their source's format, or png / jpg"
    ),
    "compress_level": Option(
        1, "integer", minimum=0, maximum=9, description="PNG zlib level of images and labels (0-9)"
    ),
}


@dataclass(frozen=True)
class PasteOptions:
    """The shared options as an object (random, context and vlm use exactly these); a method
    with options of its own gets a subclass with them (:func:`options_class`)."""

    copies: int = 1
    objects_per_image: tuple[int, int] = (1, 3)
    scale_range: tuple[float, float] = (0.75, 1.25)
    flip_prob: float = 0.5
    blend: str = "feather"
    feather_px: float = 2
    image_format: str = "source"
    compress_level: int = 1

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def own(self) -> dict:
        """The options beyond the shared ones (a method's own), as in the config."""
        return {k: v for k, v in self.to_dict().items() if k not in SHARED_OPTIONS}

    def check(self, where: str = "paste") -> None:
        """Every value within its declared bounds (the shared options)."""
        for key, opt in SHARED_OPTIONS.items():
            opt.check(where, key, getattr(self, key))


def options_class(specs: Mapping[str, Option], name: str = "PasteOptions") -> type[PasteOptions]:
    """The options object of a method whose options are ``specs`` (the shared ones with its
    defaults, then its own): :class:`PasteOptions` with changed defaults and extra fields."""
    py = {"pair": tuple, "int_pair": tuple, **_PY}
    changed = [k for k, s in specs.items() if k not in SHARED_OPTIONS or s.default != SHARED_OPTIONS[k].default]
    if not changed:
        return PasteOptions
    extra = [(k, py[specs[k].type], field(default=specs[k].default)) for k in changed]
    return make_dataclass(name, extra, bases=(PasteOptions,), frozen=True)


def parse_options(
    specs: Mapping[str, Option], cls: type[PasteOptions], block: Mapping | None, where: str
) -> PasteOptions:
    """The options object of a config block: keys left out take their defaults; an unknown key
    or a bad value is one SegaugError naming ``where.key``."""
    block = dict(block or {})
    unknown = sorted(set(block) - set(specs))
    if unknown:
        raise SegaugError(f"{where}: unknown option(s) {unknown}; known: {', '.join(sorted(specs))}")
    try:
        values = {k: specs[k].cast(k, v) for k, v in block.items()}
    except (TypeError, ValueError) as e:
        raise SegaugError(f"{where}: {e}") from None
    opts = cls(**values)
    for key, spec in specs.items():
        spec.check(where, key, getattr(opts, key))
    return opts
