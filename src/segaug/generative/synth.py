"""Synthetic VOC splits: from a plan (Algorithm 1) to generated image/label pairs.

A *variant* says how a synthetic set is made (the keys of ``generative.variants`` in config):
``generator``, ``prior`` (lineart | canny | sketch | none), ``prompt`` (caption | classes |
appended), ``blend`` with ``w1``/``w2`` (Visual Prior Blending), ``balance``/``n_balance`` or
``copies`` (the plan) and ``candidates`` (k > 1: the CLIP post-filter keeps the best of k).

The plan is cut into shards of ``shard_size`` entries; one job generates one shard
(:func:`generate_shard`, models loaded once), and :func:`merge_shards` gathers the shards
into one canonical dataset: ``images/{source}_g{copy}.png`` paired with a copy of the source's
label (``labels/``), the blended prior it was conditioned on (``priors/``), ``classes.json``,
``sets/all.txt``, ``manifest.jsonl`` (one line per image: source, prompt, seed, attempts,
rejected outputs, CLIP candidates) and ``summary.json``.

Seeds: the image of plan entry (source, copy) under run seed ``s`` is generated with
``derive_seed(s, source, copy)`` (candidate ``j`` > 0: source id suffixed ``#j``). Entries are
generated one at a time (one pipeline call per entry, batching only its ``candidates``): batched
float arithmetic differs by ~1 grey level from unbatched, so batching across entries would make
an image depend on which shard it falls in. This way an image's bytes depend only on the seed,
the entry and the models, never on the shard size or the plan order (``tests/test_synth.py``).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from segaug.data.canonical import (
    IGNORE_INDEX,
    ClassTable,
    image_path,
    label_path,
    read_image,
    write_image,
    write_split,
)
from segaug.errors import SegaugError
from segaug.generative.priors import blend
from segaug.generative.prompts import build_prompt
from segaug.io import atomic_path, read_json, write_json, write_text
from segaug.progress import progress

log = logging.getLogger(__name__)

VARIANT_DEFAULTS = {
    "prior": "lineart",
    "prompt": "appended",
    "blend": True,
    "w1": 0.7,
    "w2": 0.9,
    "balance": True,
    "n_balance": "auto",
    "copies": 1,
    "candidates": 1,
}


def output_id(entry: Mapping) -> str:
    return f"{entry['source']}_g{entry['copy']}"


def shard_entries(entries: Sequence[Mapping], shard: int, shard_size: int) -> list[Mapping]:
    """Entries ``[shard * shard_size, (shard + 1) * shard_size)`` of the plan."""
    if shard_size < 1 or shard < 0:
        raise SegaugError(f"shard {shard} / shard size {shard_size}: both must be >= 0 / >= 1")
    n_shards = max(1, -(-len(entries) // shard_size))
    if shard >= n_shards:
        raise SegaugError(f"shard {shard} out of range: the plan has {n_shards} shards of {shard_size}")
    return list(entries[shard * shard_size : (shard + 1) * shard_size])


def prompt_names(
    classes: Sequence[int], table: ClassTable, exclude: Sequence[str], aliases: Mapping[str, str]
) -> list[str]:
    """Prompt words of an image's classes: index order, ``exclude`` dropped, aliases applied."""
    names = [table.names[c] for c in sorted(set(int(c) for c in classes)) if c < table.num_classes]
    return [aliases.get(n, n) for n in names if n not in exclude]


def _prior(priors_dir: Path, image_id: str, variant: Mapping) -> np.ndarray:
    from PIL import Image

    def load(kind):
        p = priors_dir / kind / f"{image_id}.png"
        if not p.exists():
            raise SegaugError(f"{p}: prior missing; rebuild the priors of this split")
        return np.asarray(Image.open(p).convert("L"))

    v_image = load("image")
    if not variant.get("blend", True):
        return v_image
    return blend(v_image, load("label"), float(variant["w1"]), float(variant["w2"]))


def generate_shard(
    dataset_root: str | Path,
    entries: Sequence[Mapping],
    image_classes: Mapping[str, Sequence[int]],
    generator,
    seed: int,
    variant: Mapping,
    out_dir: str | Path,
    captions: Mapping[str, str] | None = None,
    priors_dir: str | Path | None = None,
    class_prompts: Mapping[str, str] | None = None,
    exclude: Sequence[str] = ("background",),
    scorer=None,
) -> dict:
    """Generate the images of ``entries`` with ``generator`` into ``out_dir`` (atomically).

    ``generator`` follows :class:`segaug.generative.pipelines.Generator` (``generate(jobs)``);
    ``scorer`` a :class:`segaug.generative.clip.ClipScorer`, needed when ``candidates`` > 1.
    """
    from segaug.generative.pipelines import GenJob, derive_seed

    v = {**VARIANT_DEFAULTS, **variant}
    k = int(v["candidates"])
    if k > 1 and scorer is None:
        raise SegaugError("variant asks for candidates > 1 (the CLIP post-filter) but no CLIP model is given")
    if v["prompt"] != "classes" and captions is None:
        raise SegaugError(f"prompt mode {v['prompt']!r} needs the split's captions (--captions)")
    if v["prior"] != "none" and priors_dir is None:
        raise SegaugError(f"prior {v['prior']!r} needs the split's priors directory (--priors)")
    dataset_root = Path(dataset_root)
    table = ClassTable.load(dataset_root / "classes.json")
    aliases = dict(class_prompts or {})
    excl_idx = [table.index(n) for n in exclude if n in table.names]
    manifest, regenerated = [], 0
    with atomic_path(out_dir) as tmp:
        for sub in ("images", "labels", "priors"):
            (tmp / sub).mkdir(parents=True)
        for e in progress(entries, desc=f"generate ({v['generator']})"):
            src = e["source"]
            if src not in image_classes:
                raise SegaugError(f"plan entry {e}: image {src!r} is not in the plan's split")
            image = read_image(image_path(dataset_root, src))
            names = prompt_names(image_classes[src], table, exclude, aliases)
            caption = (captions or {}).get(src, "")
            if v["prompt"] != "classes" and src not in (captions or {}):
                raise SegaugError(f"captions: no caption for image {src!r}; rebuild the captions")
            prompt = build_prompt(v["prompt"], caption, names)
            prior = _prior(Path(priors_dir), src, v) if v["prior"] != "none" else None
            mask = None
            if v["prior"] == "none":
                lab = np.asarray(load_pair_label(dataset_root, src))
                mask = ~np.isin(lab, [*excl_idx, IGNORE_INDEX])
            jobs = [
                GenJob(
                    image=image,
                    prompt=prompt,
                    prior=prior,
                    mask=mask,
                    seed=derive_seed(seed, src if j == 0 else f"{src}#{j}", int(e["copy"])),
                )
                for j in range(k)
            ]
            results = generator.generate(jobs)
            scores = None
            best = 0
            if k > 1:
                from segaug.generative.clip import select_best

                best, scores = select_best(scorer, [r.image for r in results], names or [prompt])
            r = results[best]
            oid = output_id(e)
            write_image(tmp / "images" / f"{oid}.png", r.image)
            shutil.copyfile(label_path(dataset_root, src), tmp / "labels" / f"{oid}.png")
            if prior is not None:
                write_image(tmp / "priors" / f"{oid}.png", prior)
            regenerated += sum(res.attempts > 1 for res in results)
            manifest.append(
                {
                    "output_id": oid,
                    "source_id": src,
                    "copy": int(e["copy"]),
                    "balanced_class": table.names[e["class"]] if e["class"] >= 0 else None,
                    "prompt": prompt,
                    "seed": int(r.seed),
                    "attempts": int(r.attempts),
                    "rejected": list(r.rejected),
                    "candidates": k,
                    "chosen": int(best),
                    "candidate_scores": None if scores is None else [round(float(s), 4) for s in scores],
                    "candidate_rejected": [list(res.rejected) for res in results] if k > 1 else None,
                }
            )
        write_text(tmp / "manifest.jsonl", "".join(json.dumps(m, sort_keys=True) + "\n" for m in manifest))
        summary = {"images": len(manifest), "regenerated": regenerated, "seed": int(seed), "variant": v}
        write_json(tmp / "summary.json", summary)
    return summary


def load_pair_label(dataset_root: Path, image_id: str) -> np.ndarray:
    from segaug.data.canonical import read_label

    return read_label(label_path(dataset_root, image_id))


def merge_shards(
    dataset_root: str | Path, plan: Mapping, shard_dirs: Sequence[str | Path], out_dir: str | Path
) -> dict:
    """Gather generated shards into one synthetic canonical dataset (atomically)."""
    dataset_root = Path(dataset_root)
    expected = [output_id(e) for e in plan["entries"]]
    manifest: list[dict] = []
    with atomic_path(out_dir) as tmp:
        for sub in ("images", "labels", "priors", "sets"):
            (tmp / sub).mkdir(parents=True)
        for d in map(Path, shard_dirs):
            if not (d / "manifest.jsonl").exists():
                raise SegaugError(f"{d}: not a generated shard (no manifest.jsonl); rerun its job")
            for line in (d / "manifest.jsonl").read_text().splitlines():
                manifest.append(json.loads(line))
            for sub in ("images", "labels", "priors"):
                for f in sorted((d / sub).glob("*.png")):
                    shutil.copyfile(f, tmp / sub / f.name)
        got = [m["output_id"] for m in manifest]
        if sorted(got) != sorted(expected):
            missing = sorted(set(expected) - set(got))[:5]
            raise SegaugError(
                f"shards hold {len(got)} images but the plan has {len(expected)} "
                f"(missing e.g. {missing}); rerun the generate jobs of this set"
            )
        order = {oid: i for i, oid in enumerate(expected)}
        manifest.sort(key=lambda m: order[m["output_id"]])
        shutil.copyfile(dataset_root / "classes.json", tmp / "classes.json")
        write_split(tmp / "sets" / "all.txt", expected)
        write_text(tmp / "manifest.jsonl", "".join(json.dumps(m, sort_keys=True) + "\n" for m in manifest))
        rejected = Counter(r for m in manifest for r in m["rejected"])
        summary = {
            "images": len(manifest),
            "source_images": plan["num_origin"],
            "regenerated_images": sum(m["attempts"] > 1 for m in manifest),
            "rejected_outputs": dict(sorted(rejected.items())),
            "plan": plan["plan"],
            "n_balance": plan.get("n_balance"),
            **{k: plan[k] for k in ("entropy_origin", "cir_origin", "entropy_final", "cir_final")},
        }
        write_json(tmp / "summary.json", summary)
    return summary


def read_manifest(set_dir: str | Path) -> list[dict]:
    from segaug.io import read_jsonl

    return read_jsonl(Path(set_dir) / "manifest.jsonl", "synthetic set manifest")


def read_plan(path: str | Path) -> dict:
    plan = read_json(path)
    if "entries" not in plan:
        raise SegaugError(f"{path}: not a generation plan (no 'entries'); rebuild it")
    return plan
