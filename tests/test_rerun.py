"""A finished project, as a cluster user keeps it: moved to another path (the checkout too) it
plans nothing; one seed of it reruns completely (every seed-N job of the full DAG, the tables
that read them, no job of another seed) with the documented command."""

import re
import shutil
from pathlib import Path

import pytest
from test_workflow import DELETE, TINY, planned_jobs, write_config

from conftest import ROOT, run_snakemake

# Table 1, the thesis table, two ablation tables: trainings on D_origin, a pasted set, two
# synthetic sets (two variants of the generative chain) and a second loss, for two seeds.
FINISHED = {
    **TINY,
    "seeds": [0, 1],
    "table1.models": ["pspnet_r18"],
    "thesis.rows": [
        {"name": "baseline", "trainset": "origin", "loss": "ce"},
        {"name": "random paste", "trainset": "paste-random", "loss": "ce"},
        {"name": "focal loss", "trainset": "origin", "loss": "focal"},
    ],
    "thesis.examples": ["paste-random"],
    "ablations.table3": ["origin", "gen-default"],
    "ablations.table4": DELETE,
    "ablations.table5": ["gen-prompt_caption"],
    "ablations.table6": DELETE,
    "ablations.table7": DELETE,
}
TARGETS = ["all", "ablations"]
# what the checkout holds that the workflow reads (a clone elsewhere)
CHECKOUT = ["Snakefile", "rules", "scripts", "src", "config", "envs", "docs", "profiles"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finished")
    cfg = write_config(tmp, **FINISHED)
    run_snakemake(*TARGETS, "--cores", "2", "--configfile", str(cfg), cwd=tmp)
    return tmp, cfg


@pytest.mark.workflow
def test_a_moved_project_and_checkout_plan_nothing(finished, tmp_path):
    tmp, _ = finished
    moved = tmp_path / "moved"
    shutil.copytree(tmp, moved, symlinks=True)  # results and .snakemake/metadata, mtimes kept
    clone = tmp_path / "clone"
    for name in CHECKOUT:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            clone.mkdir(exist_ok=True)
            shutil.copy2(src, clone / name)
    for snakefile in (ROOT / "Snakefile", clone / "Snakefile"):
        p = run_snakemake_with(snakefile, *TARGETS, "-n", "--configfile", str(moved / "cfg.yaml"), cwd=moved)
        assert "Nothing to be done" in p.stdout + p.stderr, (snakefile, p.stdout[-3000:])
    # what Snakemake recorded holds neither the project's nor the checkout's path
    for meta in (moved / ".snakemake" / "metadata").iterdir():
        text = meta.read_text(errors="replace")
        assert str(ROOT) not in text and str(tmp) not in text, meta


def run_snakemake_with(snakefile: Path, *args, cwd):
    """conftest.run_snakemake with another Snakefile (a clone of the checkout)."""
    import os
    import subprocess
    import sys

    from conftest import snakemake_bin

    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    cmd = [snakemake_bin(), "-s", str(snakefile), "--directory", str(cwd), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, f"{' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


def seeds_in(output: str) -> set[int]:
    return {int(s) for s in re.findall(r"/seed(\d+)(?=[/.\s,]|$)", output)}


# the aggregates: they read every seed, so a rerun of one seed refreshes them
AGGREGATES = {
    "table1",
    "table2",
    "figure5",
    "sample_grid",
    "thesis_table",
    "ablation_table",
    "synthetic_sets_table",
    "all",
    "ablations",
}


@pytest.mark.workflow
@pytest.mark.parametrize("seed", [1, 0])
def test_one_command_reruns_all_of_one_seed(finished, seed):
    tmp, cfg = finished
    full = planned_jobs(run_snakemake(*TARGETS, "-n", "--forceall", "--configfile", str(cfg), cwd=tmp).stdout)
    # a forced checkpoint (plan) hides the jobs after it (the generate shards) from a dry run:
    # take them from a dry run that forces only them
    assert not [j for j in full if j[0] == "generate"]
    shards = run_snakemake(*TARGETS, "-n", "--forcerun", "generate", "--configfile", str(cfg), cwd=tmp).stdout
    full += [j for j in planned_jobs(shards) if j[0] == "generate"]
    # the documented command (docs/cluster.md), as a dry run
    p = run_snakemake(*TARGETS, "-n", "--configfile", str(cfg), "--forcerun", f"results/demo/seeds/{seed}.txt", cwd=tmp)
    planned = planned_jobs(p.stdout)
    want = sorted(j for j in full if seeds_in(j[1]) == {seed})
    got = sorted(j for j in planned if seeds_in(j[1]))
    assert got == want, (sorted(set(got) ^ set(want)), p.stdout[-2000:])
    rules = {r for r, _ in want}
    # paste, the generative chain after the plan, both losses' trainings, their evaluations
    assert {"paste", "generate", "synthetic_set", "gen_quality", "train", "evaluate"} <= rules
    others = sorted({r for r, out in planned if not seeds_in(out)})
    assert set(others) <= AGGREGATES | {"seed_file"}, others
    assert {"table1", "thesis_table", "ablation_table", "figure5", "seed_file"} <= set(others)
    assert ("sample_grid" in others) == (seed == 0)  # the sample grid shows the first seed's set
    # nothing seed-independent is redone: no tiny model, caption, prior, plan or pool
    assert not {"tiny_model", "captions", "priors", "plan", "pool", "prepare_dataset"} & set(others)
