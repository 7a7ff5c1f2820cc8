"""Paste pool objects into a split and write the result as a canonical dataset.

Output (``out_dir``, built beside it and renamed into place)::

    images/{id}_p{c}.png   pasted copy c (0-based) of source image {id} (.jpg for a JPEG
                           source: images keep their format unless ``output`` says otherwise)
    labels/{id}_p{c}.png   its label: pasted pixels take the object's class
    classes.json           the class table (unchanged)
    sets/all.txt           the new ids, in (split order, copy) order
    manifest.jsonl         one JSON object per paste (see :func:`paste_dataset`)
    summary.json           counts: images, pastes, skips, per-class pastes and pasted pixels

Randomness: copy c of the i-th id of ``ids`` draws everything (how many objects, which,
scale, flip, where) from ``numpy.random.default_rng([seed, i, c])``, so outputs depend only
on (seed, split order, pool, options) and the same seed gives byte-identical files.

Object choice (:class:`BalancedObjectSampler`): a class is drawn uniformly among the classes
present in the pool -- which are the minority classes the crop stage chose -- then an object
uniformly among that class's objects. Rare classes with few crops are thus pasted as often
as classes with many crops, which is what balancing asks for.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segaug.data.canonical import (
    ClassTable,
    load_pair,
    samples,
    write_split,
)
from segaug.errors import SegaugError
from segaug.io import atomic_path, write_json, write_text
from segaug.paste.compose import paste_object, transform_object
from segaug.paste.options import PasteOptions
from segaug.paste.output import OutputOptions, map_images, write_into_staging
from segaug.paste.placement import Candidate, Placement, Placer
from segaug.pool import PoolObject
from segaug.progress import progress

log = logging.getLogger("segaug.paste")


class BalancedObjectSampler:
    """Draw a class uniformly over the pool's classes, then one of its objects uniformly."""

    def __init__(self, pool_objects: Sequence[PoolObject]):
        if not pool_objects:
            raise SegaugError("the object pool is empty; rebuild it (lower min_area or pick classes)")
        self.by_class: dict[int, list[PoolObject]] = {}
        for o in pool_objects:
            self.by_class.setdefault(o.class_index, []).append(o)
        self.classes = sorted(self.by_class)

    def draw(self, rng: np.random.Generator) -> PoolObject:
        c = self.classes[int(rng.integers(len(self.classes)))]
        objs = self.by_class[c]
        return objs[int(rng.integers(len(objs)))]


def check_options(copies_per_image, objects_per_image, scale_range, flip_prob, blend, feather_px, seed):
    """The options every paste method shares (checked by their declarations in
    segaug.paste.options) and the seed; each bad one is a SegaugError naming it."""
    opts = PasteOptions(
        copies=copies_per_image,
        objects_per_image=tuple(objects_per_image),
        scale_range=tuple(scale_range),
        flip_prob=flip_prob,
        blend=blend,
        feather_px=feather_px,
    )
    opts.check("paste")
    if int(seed) != seed or seed < 0:
        raise SegaugError(f"seed must be a non-negative integer, got {seed!r}")


def check_pool(pool_objects: Sequence[PoolObject], class_table: ClassTable, dataset_root) -> None:
    """Every pool object's class must be the same class in the target dataset's table."""
    nc = class_table.num_classes
    for o in pool_objects:
        if o.class_index >= nc or class_table.names[o.class_index] != o.class_name:
            raise SegaugError(
                f"pool object {o.crop}: class {o.class_index} {o.class_name!r} does not match "
                f"the class table of {dataset_root}; rebuild the pool from this dataset"
            )


def write_pasted_set(
    tmp: Path,
    class_table: ClassTable,
    new_ids: Sequence[str],
    manifest: Sequence[str],
    *,
    method: str,
    seed: int,
    source_images: int,
    skipped: int,
    without: int,
    options: dict,
    pool_classes: Sequence[int],
    per_class_pastes,
    per_class_pixels,
    **extra,
) -> dict:
    """The files every pasted set ends with (any method): classes.json, sets/all.txt,
    manifest.jsonl (one JSON line per paste) and summary.json; returns the summary."""
    class_table.save(tmp / "classes.json")
    write_split(tmp / "sets" / "all.txt", new_ids)
    write_text(tmp / "manifest.jsonl", "".join(m + "\n" for m in manifest))
    names = class_table.names
    summary = {
        "method": method,
        "seed": int(seed),
        "source_images": source_images,
        "images_written": len(new_ids),
        "pastes": len(manifest),
        "skipped_objects": skipped,
        "images_without_paste": without,
        "options": options,
        "pool_classes": [names[c] for c in pool_classes],
        "per_class_pastes": {names[c]: int(per_class_pastes[c]) for c in pool_classes},
        "per_class_pasted_pixels": {names[c]: int(per_class_pixels[c]) for c in pool_classes},
        **extra,
    }
    write_json(tmp / "summary.json", summary)
    return summary


def _reason_counts(manifest_lines: Sequence[str]) -> dict[str, int]:
    """How many pastes were accepted for each kind of reason ("random", "surface", "vlm",
    "fallback (vlm: ...)"): the part of the reason before its first colon."""
    out: dict[str, int] = {}
    for line in manifest_lines:
        reason = json.loads(line)["reason"]
        kind = reason.split(")")[0] + ")" if reason.startswith("fallback (") else reason.split(":")[0]
        out[kind] = out.get(kind, 0) + 1
    return dict(sorted(out.items()))


def paste_image(
    rng: np.random.Generator,
    image: np.ndarray,
    label: np.ndarray,
    sampler: BalancedObjectSampler,
    placer: Placer,
    objects_per_image: tuple[int, int] = (1, 3),
    scale_range: tuple[float, float] = (0.75, 1.25),
    flip_prob: float = 0.5,
    blend: str = "feather",
    feather_px: float = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[Placement, PoolObject, int]], int]:
    """Paste a random number of objects into one image.

    Returns (image, label, union of pasted masks, [(placement, pool object, pixels)], skipped).
    """
    n = int(rng.integers(objects_per_image[0], objects_per_image[1] + 1))
    pasted = np.zeros(label.shape, dtype=bool)
    done, skipped = [], 0
    for _ in range(n):
        obj = sampler.draw(rng)
        scale = float(rng.uniform(scale_range[0], scale_range[1]))
        flip = bool(rng.random() < flip_prob)
        cand = Candidate.make(obj.crop, obj.class_index, obj.class_name, obj.rgba(), scale, flip)
        pl = placer.place(rng, image, label, cand)
        if pl is None:
            skipped += 1
            continue
        if (pl.scale, pl.flip) == (cand.scale, cand.flip):
            rgba = cand.rgba
        else:
            rgba = transform_object(cand.base_rgba, pl.scale, pl.flip)
        if rgba.shape[:2] != (pl.height, pl.width):
            raise ValueError(
                f"placer {placer.name!r} returned size {pl.width}x{pl.height} but the object "
                f"at scale {pl.scale} is {rgba.shape[1]}x{rgba.shape[0]}"
            )
        image, label, mask = paste_object(image, label, rgba, pl.class_index, pl.x, pl.y, blend, feather_px)
        pasted |= mask
        done.append((pl, obj, int(mask.sum())))
    return image, label, pasted, done, skipped


@dataclass
class _ImageJob:
    """What each worker needs to paste the copies of one source image."""

    pairs: list
    sampler: BalancedObjectSampler
    placer: Placer
    seed: int
    copies: int
    objects_per_image: tuple
    scale_range: tuple
    flip_prob: float
    blend: str
    feather_px: float
    tmp: Path
    output: OutputOptions
    num_classes: int


def _paste_source(job: _ImageJob, i: int) -> list:
    """The pasted copies of source image ``i``: files written into the staging directory;
    returns per copy (output id, manifest lines, skipped, pastes, pixels per class, classes)."""
    s = job.pairs[i]
    image0, label0 = load_pair(s, job.num_classes)
    placer = job.placer
    if hasattr(placer, "set_image"):  # optional hook, once per source image (before its copies)
        placer.set_image(s.id, image0, label0)
    suffix = job.output.image_suffix(s.image)
    out = []
    for c in range(job.copies):
        rng = np.random.default_rng([job.seed, i, c])
        image, label, union, done, sk = paste_image(
            rng,
            image0,
            label0,
            job.sampler,
            placer,
            job.objects_per_image,
            job.scale_range,
            job.flip_prob,
            job.blend,
            job.feather_px,
        )
        out_id = f"{s.id}_p{c}"
        level = job.output.compress_level
        write_into_staging(job.tmp / "images" / f"{out_id}{suffix}", image, level)
        write_into_staging(job.tmp / "labels" / f"{out_id}.png", label, level)
        lines = []
        for k, (pl, obj, px) in enumerate(done):
            lines.append(
                json.dumps(
                    {
                        "target_id": s.id,
                        "output_id": out_id,
                        "copy": c,
                        "order": k,
                        "crop": obj.crop,
                        "source_id": obj.source_id,
                        "class_index": pl.class_index,
                        "class_name": obj.class_name,
                        "x": pl.x,
                        "y": pl.y,
                        "width": pl.width,
                        "height": pl.height,
                        "scale": round(pl.scale, 6),
                        "flip": pl.flip,
                        "blend": job.blend,
                        "feather_px": job.feather_px if job.blend == "feather" else 0,
                        "reason": pl.reason,
                        "pixels": px,
                        **({"vlm_answer": pl.vlm_answer} if pl.vlm_answer else {}),
                    },
                    sort_keys=True,
                )
            )
        pixels = np.bincount(label[union], minlength=256)
        out.append((out_id, lines, sk, len(done), pixels, [pl.class_index for pl, _, _ in done]))
    return out


def paste_dataset(
    dataset_root: str | Path,
    ids: Sequence[str],
    pool_objects: Sequence[PoolObject],
    placer: Placer,
    seed: int,
    out_dir: str | Path,
    copies_per_image: int = 1,
    objects_per_image: tuple[int, int] = (1, 3),
    scale_range: tuple[float, float] = (0.75, 1.25),
    flip_prob: float = 0.5,
    blend: str = "feather",
    feather_px: float = 2,
    class_table: ClassTable | None = None,
    output: OutputOptions | None = None,
    workers: int = 1,
    own_options: dict | None = None,
) -> dict:
    """Write ``copies_per_image`` pasted copies of every image of ``ids`` to ``out_dir``.

    ``class_table`` defaults to the dataset's classes.json. ``output``: image format and PNG
    compression (:class:`segaug.paste.output.OutputOptions`; images keep their source format,
    PNG level 1). ``workers``: processes over the images (byte-identical output for any
    number; a placer with job-wide state, the VLM's, runs in one). Each manifest.jsonl line holds:
    target_id, output_id, copy, order (paste number within the image), crop, source_id,
    class_index, class_name, x, y, width, height (top-left and size after scaling), scale,
    flip, blend, feather_px, reason, pixels (label pixels the paste set, clipped; a later
    paste in the same image may cover some), and vlm_answer for VLM-placed objects (how the
    answer was read: format, shape, coordinates). ``own_options``: a method's options beyond the
    shared ones, recorded in summary.json's ``options``. Returns the summary.json dict.
    """
    check_options(copies_per_image, objects_per_image, scale_range, flip_prob, blend, feather_px, seed)
    output = output or OutputOptions()
    dataset_root, out_dir = Path(dataset_root), Path(out_dir)
    if class_table is None:
        class_table = ClassTable.load(dataset_root / "classes.json")
    nc = class_table.num_classes
    check_pool(pool_objects, class_table, dataset_root)
    sampler = BalancedObjectSampler(pool_objects)
    pairs = samples(dataset_root, ids)
    log.info(
        "pasting %s into %d images x %d copies (method %s, seed %d, pool classes: %s)",
        f"{objects_per_image[0]}-{objects_per_image[1]} objects",
        len(pairs),
        copies_per_image,
        placer.name,
        seed,
        ", ".join(class_table.names[c] for c in sampler.classes),
    )

    new_ids: list[str] = []
    manifest: list[str] = []
    pasted_pixels = np.zeros(256, dtype=np.int64)
    pastes_per_class = np.zeros(256, dtype=np.int64)
    skipped = without = 0
    if workers > 1 and getattr(placer, "stats", None) is not None:
        log.info("placer %s keeps job-wide state (stats, request budget): one process", placer.name)
        workers = 1
    with atomic_path(out_dir) as tmp:
        for sub in ("images", "labels", "sets"):
            (tmp / sub).mkdir(parents=True)
        job = _ImageJob(
            pairs,
            sampler,
            placer,
            int(seed),
            copies_per_image,
            tuple(objects_per_image),
            tuple(scale_range),
            flip_prob,
            blend,
            feather_px,
            tmp,
            output,
            nc,
        )
        results = map_images(_paste_source, job, len(pairs), workers)
        for res in progress(results, total=len(pairs), desc=f"paste ({placer.name})"):
            for out_id, lines, sk, n_done, pixels, classes in res:
                new_ids.append(out_id)
                manifest.extend(lines)
                skipped += sk
                without += not n_done
                pasted_pixels += pixels
                for c in classes:
                    pastes_per_class[c] += 1
        options = {
            "copies_per_image": copies_per_image,
            "objects_per_image": list(objects_per_image),
            "scale_range": list(scale_range),
            "flip_prob": flip_prob,
            "blend": blend,
            "feather_px": feather_px,
            **(own_options or {}),
        }
        if hasattr(placer, "finish"):  # e.g. VLM paste: fails here if the VLM was hardly used
            placer.finish()
        extra = {"reasons": _reason_counts(manifest), "output": output.to_dict()}
        if getattr(placer, "stats", None):
            extra["placer_stats"] = placer.stats
        summary = write_pasted_set(
            tmp,
            class_table,
            new_ids,
            manifest,
            method=placer.name,
            seed=seed,
            source_images=len(pairs),
            skipped=skipped,
            without=without,
            options=options,
            pool_classes=sampler.classes,
            per_class_pastes=pastes_per_class,
            per_class_pixels=pasted_pixels,
            **extra,
        )
    if without:
        log.warning("%d of %d images got no paste (placer skipped every object)", without, len(new_ids))
    log.info("wrote %d images, %d pastes -> %s", len(new_ids), len(manifest), out_dir)
    return summary
