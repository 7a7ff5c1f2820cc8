"""Synthetic sets from plans with tiny random-weight models: shards, CLIP filter, inpainting, merge."""

import json

import numpy as np
import pytest

from segaug.data.canonical import ClassTable, read_image, read_label, write_image, write_label, write_split
from segaug.errors import SegaugError
from segaug.generative.balance import image_classes, make_plan
from segaug.generative.synth import generate_shard, merge_shards, output_id, shard_entries

NAMES = ("background", "road", "car")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from segaug.generative.clip import ClipScorer
    from segaug.generative.pipelines import Generator
    from segaug.generative.tiny import build_tiny

    tmp = tmp_path_factory.mktemp("synth")
    data = tmp / "data"
    ClassTable(NAMES, ((0, 0, 0), (128, 128, 128), (255, 0, 0))).save(data / "classes.json")
    rng = np.random.default_rng(0)
    ids = [f"im{i}" for i in range(4)]
    for k, i in enumerate(ids):
        lab = np.zeros((48, 64), np.uint8)
        lab[20:40] = 1
        if k % 2:
            lab[24:32, 10:30] = 2
        write_label(data / "labels" / f"{i}.png", lab)
        write_image(data / "images" / f"{i}.png", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        for kind in ("image", "label"):
            write_image(tmp / "priors" / kind / f"{i}.png", rng.integers(0, 255, (48, 64), dtype=np.uint8))
    write_split(data / "sets" / "train.txt", ids)
    for kind in ("sdxl-adapter", "sdxl-inpaint", "clip"):
        build_tiny(kind, tmp / kind)
    common = {
        "steps": 2,
        "resolution": 32,
        "multiple_of": 16,
        "dtype": "float32",
        "batch_size": 4,
        "guidance_scale": 2.0,
    }
    adapter = Generator(
        {
            "pipeline": "sdxl_adapter",
            "base": str(tmp / "sdxl-adapter"),
            "adapter": str(tmp / "sdxl-adapter" / "adapter"),
            **common,
        },
        device="cpu",
    )
    inpaint = Generator({"pipeline": "sdxl_inpaint", "base": str(tmp / "sdxl-inpaint"), **common}, device="cpu")
    scorer = ClipScorer(str(tmp / "clip"), device="cpu")
    classes = image_classes(data, ids)
    plan = make_plan(classes, "balance-auto", list(NAMES), ["background"])
    captions = {i: f"caption {i}" for i in ids}
    return tmp, data, plan, captions, adapter, inpaint, scorer


VARIANT = {
    "generator": "adapter_lineart",
    "prior": "lineart",
    "prompt": "appended",
    "blend": True,
    "w1": 0.7,
    "w2": 0.9,
    "candidates": 1,
}


def test_plan_balances_the_rare_class(world):
    _, _, plan, *_ = world
    # road is in 4 images, car in 2: n_balance 5 gives |D_gen| = 1 + 3 = 4 = |D_origin|
    assert plan["n_balance"] == 5
    got = [(e["class"], e["source"], e["copy"]) for e in plan["entries"]]
    assert got == [(1, "im0", 0), (2, "im1", 0), (2, "im3", 0), (2, "im1", 1)]


def test_shards_merge_into_a_synthetic_split_independent_of_sharding(world, tmp_path):
    tmp, data, plan, captions, adapter, *_ = world
    entries = plan["entries"]
    one = generate_shard(
        data,
        entries,
        plan["image_classes"],
        adapter,
        7,
        VARIANT,
        tmp_path / "whole",
        captions=captions,
        priors_dir=tmp / "priors",
        exclude=["background"],
    )
    assert one["images"] == len(entries) and one["regenerated"] == 0
    shards = []
    for k in range(len(entries)):
        part = shard_entries(entries, k, 1)
        generate_shard(
            data,
            part,
            plan["image_classes"],
            adapter,
            7,
            VARIANT,
            tmp_path / f"s{k}",
            captions=captions,
            priors_dir=tmp / "priors",
            exclude=["background"],
        )
        shards.append(tmp_path / f"s{k}")
    summary = merge_shards(data, plan, shards, tmp_path / "set")
    assert summary["images"] == len(entries) and summary["entropy_final"] == plan["entropy_final"]
    for e in entries:
        oid = output_id(e)
        # same image whether generated in one shard or one per shard (per-image seeds)
        assert np.array_equal(
            read_image(tmp_path / "set/images" / f"{oid}.png"), read_image(tmp_path / "whole/images" / f"{oid}.png")
        )
        assert np.array_equal(
            read_label(tmp_path / "set/labels" / f"{oid}.png"), read_label(data / "labels" / f"{e['source']}.png")
        )
        assert (tmp_path / "set/priors" / f"{oid}.png").exists()  # the blended prior used
    m = [json.loads(x) for x in (tmp_path / "set/manifest.jsonl").read_text().splitlines()]
    assert m[0]["prompt"] == "caption im0; road" and m[1]["prompt"] == "caption im1; road, car"
    assert (tmp_path / "set/sets/all.txt").read_text().split() == [output_id(e) for e in entries]
    with pytest.raises(SegaugError, match="rerun the generate jobs"):
        merge_shards(data, plan, shards[:1], tmp_path / "partial")
    assert not (tmp_path / "partial").exists()


def test_clip_post_filter_keeps_the_best_of_k(world, tmp_path):
    tmp, data, plan, captions, adapter, _, scorer = world
    v = {**VARIANT, "candidates": 3}
    with pytest.raises(SegaugError, match="no CLIP model"):
        generate_shard(
            data,
            plan["entries"],
            plan["image_classes"],
            adapter,
            0,
            v,
            tmp_path / "x",
            captions=captions,
            priors_dir=tmp / "priors",
        )
    generate_shard(
        data,
        plan["entries"],
        plan["image_classes"],
        adapter,
        0,
        v,
        tmp_path / "f",
        captions=captions,
        priors_dir=tmp / "priors",
        exclude=["background"],
        scorer=scorer,
    )
    m = [json.loads(x) for x in (tmp_path / "f/manifest.jsonl").read_text().splitlines()]
    for line in m:
        scores = line["candidate_scores"]
        assert len(scores) == 3 and line["chosen"] == int(np.argmax(scores))


def test_inpainting_variant_needs_no_prior(world, tmp_path):
    tmp, data, plan, captions, _, inpaint, _ = world
    v = {**VARIANT, "generator": "inpaint", "prior": "none", "blend": False, "prompt": "classes"}
    generate_shard(data, plan["entries"], plan["image_classes"], inpaint, 0, v, tmp_path / "i", exclude=["background"])
    m = [json.loads(x) for x in (tmp_path / "i/manifest.jsonl").read_text().splitlines()]
    assert [x["prompt"] for x in m[:2]] == ["a photo of road", "a photo of road, car"]
    assert not list((tmp_path / "i/priors").iterdir())
    with pytest.raises(SegaugError, match="needs the split's captions"):
        generate_shard(
            data, plan["entries"], plan["image_classes"], inpaint, 0, {**v, "prompt": "appended"}, tmp_path / "j"
        )
