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
        (lambda c: c["pool"].update(classes=["car", "baot"]),
         "pool.classes[1]: unknown class 'baot'; known: grass, road, water, building, tree, car, boat"),
        (lambda c: c["table1"].update(models=["unet"]), "key 'table1.models': unknown model 'unet'"),
        (lambda c: c["splits"]["full"].update(dataset="nope"), "key 'splits.full.dataset': unknown dataset 'nope'"),
        (lambda c: c["paste"].update(bogus={}), "unknown key 'paste.bogus' (allowed here: context, random, sigtor, vlm)"),
        (lambda c: c["context"]["rules"]["car"].update(surfaces=["lake"]),
         "key 'context.rules.car.surfaces': ['lake'] not in context.surfaces.names"),
        (lambda c: c.update(colour=1), "unknown key 'colour'"),
        (lambda c: c["datasets"]["shapes"].update(classes=["a"]), "unknown key 'datasets.shapes.classes'"),
    ],
)  # fmt: skip
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
