"""The config checks the workflow runs when it starts, called directly (no Snakemake)."""

import copy

import pytest
import yaml

from conftest import ROOT
from segaug.workflow.config import expand_variants, validate_config

SCHEMA = ROOT / "config" / "schema.yaml"


def load(name):
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("name,tables", [("config.yaml", {"voc2007", "voc2012"}), ("demo.yaml", {"shapes"})])
def test_shipped_configs_are_valid(name, tables):
    found, problems = validate_config(load(name), SCHEMA)
    assert problems == [] and set(found) == tables


def test_thesis_config_is_valid_without_the_data():
    """Vaihingen's table is ISPRS's: the config checks need no files on this machine."""
    found, problems = validate_config(load("thesis.yaml"), SCHEMA)
    assert problems == [] and found["vaihingen"]["names"][4] == "car"


@pytest.mark.parametrize(
    "edit,line",
    [
        (
            lambda c: c["pool"].update(classes=["car", "baot"]),
            "pool.classes[1]: unknown class 'baot'; known: grass, road, water, building, tree, car, boat",
        ),
        (lambda c: c["table1"].update(models=["unet"]), "key 'table1.models': unknown model 'unet'"),
        (lambda c: c["splits"]["full"].update(dataset="nope"), "key 'splits.full.dataset': unknown dataset 'nope'"),
        (
            lambda c: c["paste"].update(bogus={}),
            "unknown key 'paste.bogus' (allowed here: context, random, sigtor, vlm)",
        ),
        (
            lambda c: c["context"]["rules"]["car"].update(surfaces=["lake"]),
            "key 'context.rules.car.surfaces': ['lake'] not in context.surfaces.names",
        ),
        (lambda c: c.update(colour=1), "unknown key 'colour'"),
        (lambda c: c["datasets"]["shapes"].update(classes=["a"]), "unknown key 'datasets.shapes.classes'"),
    ],
)
def test_bad_config_lines_name_the_key(edit, line):
    cfg = copy.deepcopy(load("demo.yaml"))
    edit(cfg)
    _, problems = validate_config(cfg, SCHEMA)
    if line is None:
        assert problems == []
    else:
        assert any(line in p for p in problems), problems


def test_variants_expand_with_the_table7_grid():
    v = expand_variants(load("config.yaml"))
    assert "default" in v and sum(k.startswith("default_w1-") for k in v) == 20


# ------------------------------------------------------------------ run planning (segaug.workflow.plan)
from segaug.workflow import plan  # noqa: E402


def test_table1_runs_of_the_paper():
    cfg = load("config.yaml")
    runs = plan.table1_runs(cfg, [0, 1, 2])
    assert len(runs) == 108 and len(set(runs)) == 108  # 3 models x 6 splits x 2 sets x 3 seeds
    r = runs[1]
    assert (r.dataset, r.split, r.trainset, r.seed) == ("voc2007", "voc7", "origin", 1)
    assert r.path("results", "eval") == "results/voc2007/voc7/eval/deeplabv3plus_r50/origin/ce/seed1"
    gens = plan.synthetic_sets(runs)
    assert len(gens) == 18 and all(g.variant == "default" for g in gens)  # 6 splits x 3 seeds


def test_ablation_and_thesis_runs():
    cfg = load("config.yaml")
    rows = plan.ablation_rows(cfg, "table7")
    assert len(rows) == 20 and rows[:2] == ["gen-default_w1-0.6_w2-0.7", "gen-default_w1-0.7_w2-0.7"]  # w1 fastest
    assert len(plan.ablation_runs(cfg, "table7", [0, 1])) == 40
    demo = load("demo.yaml")
    th = plan.thesis_runs(demo, [0])
    assert [r.trainset for r in th] == [row["trainset"] for row in demo["thesis"]["rows"]]
    assert {r.trainset for r in plan.d_final_runs(demo, [0])} == {"origin", demo["table1"]["d_final"]}


def test_plan_names():
    assert plan.plan_name({"balance": True}) == "balance-auto"
    assert plan.plan_name({"balance": True, "n_balance": 41}) == "balance-41"
    assert plan.plan_name({"balance": False, "copies": 2}) == "uniform-2"


def test_training_defaults_live_once_and_the_schema_agrees():
    from segaug.train.run import TRAIN_DEFAULTS

    schema = yaml.safe_load(SCHEMA.read_text())["properties"]["train"]["properties"]
    assert set(schema) == set(TRAIN_DEFAULTS) - {"threads"}  # threads come from the profile
    for key, spec in schema.items():
        assert spec.get("default", "missing") == TRAIN_DEFAULTS[key], key
