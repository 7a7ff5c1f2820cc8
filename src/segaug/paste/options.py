"""The options of a paste method, with their defaults in one place.

A method's config block (``paste.<method>`` in the config) becomes one options object,
checked once: an unknown key or a bad value is one SegaugError naming ``paste.<method>.<key>``.
``config/schema.yaml`` repeats these defaults for the reader; a test checks both agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

from segaug.errors import SegaugError

BLENDS = ("hard", "feather", "poisson")
IMAGE_FORMATS = ("source", "png", "jpg")


@dataclass(frozen=True)
class PasteOptions:
    """What every paste method shares (random, context and vlm use exactly these)."""

    copies: int = 1  # pasted copies of each source image
    objects_per_image: tuple[int, int] = (1, 3)  # (min, max) objects drawn per copy
    scale_range: tuple[float, float] = (0.75, 1.25)  # object scale factor range
    flip_prob: float = 0.5  # horizontal flip probability per object
    blend: str = "feather"  # hard | feather | poisson
    # feather width (blend: feather); a given value is a float, the default the int 2 as the
    # command line always gave it (summary.json records it: same bytes as before)
    feather_px: float = 2
    image_format: str = "source"  # pasted images: their source's format, or png / jpg
    compress_level: int = 1  # PNG zlib level of images and labels (0-9)

    @classmethod
    def from_config(cls, block: Mapping | None, where: str = "paste") -> PasteOptions:
        """Options from a config block; keys left out take the defaults above."""
        block = dict(block or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            raise SegaugError(f"{where}: unknown option(s) {unknown}; known: {', '.join(sorted(known))}")
        try:
            opts = replace(cls(), **{k: _cast(cls, k, v) for k, v in block.items()})
        except (TypeError, ValueError) as e:
            raise SegaugError(f"{where}: {e}") from None
        opts.check(where)
        return opts

    def check(self, where: str = "paste") -> None:
        lo, hi = self.objects_per_image
        if self.copies < 1:
            raise SegaugError(f"{where}.copies must be >= 1, got {self.copies}")
        if not 0 <= lo <= hi:
            raise SegaugError(f"{where}.objects_per_image must be [min, max] with 0 <= min <= max, got {[lo, hi]}")
        slo, shi = self.scale_range
        if not 0 < slo <= shi:
            raise SegaugError(f"{where}.scale_range must be [min, max] with 0 < min <= max, got {[slo, shi]}")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise SegaugError(f"{where}.flip_prob must be in [0, 1], got {self.flip_prob}")
        if self.blend not in BLENDS:
            raise SegaugError(f"{where}.blend: {self.blend!r}; use one of {', '.join(BLENDS)}")
        if self.feather_px < 0:
            raise SegaugError(f"{where}.feather_px must be >= 0, got {self.feather_px}")
        if self.image_format not in IMAGE_FORMATS:
            raise SegaugError(f"{where}.image_format: {self.image_format!r}; use one of {', '.join(IMAGE_FORMATS)}")
        if not 0 <= self.compress_level <= 9:
            raise SegaugError(f"{where}.compress_level must be 0-9, got {self.compress_level}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SigtorOptions(PasteOptions):
    """SIGtor's own defaults (2-4 objects, scale 0.5-2, Poisson blending) and its extras."""

    objects_per_image: tuple[int, int] = (2, 4)
    scale_range: tuple[float, float] = (0.5, 2.0)
    blend: str = "poisson"
    jitter: float = 0.2  # colour jitter strength per object
    blur_prob: float = 0.2  # probability of blurring an object
    min_area: int = 20  # smallest object kept after clean-up (pixels)

    def check(self, where: str = "paste.sigtor") -> None:
        super().check(where)
        if self.jitter < 0 or not 0 <= self.blur_prob <= 1 or self.min_area < 1:
            raise SegaugError(f"{where}: jitter >= 0, blur_prob in [0, 1] and min_area >= 1 please")


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _cast(cls, key: str, value):
    """The value as the option's declared type (floats stay floats, as on the command line)."""
    kind = next(f.type for f in fields(cls) if f.name == key)
    if kind.startswith("tuple["):
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f"{key} must be a [min, max] pair, got {value!r}")
        item = _TYPES[kind[len("tuple[") :].split(",")[0].strip()]
        return tuple(item(v) for v in value)
    return _TYPES[kind](value)
