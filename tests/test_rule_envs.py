"""Every env verified on its own: each envs/*.yaml built from its own pins as a venv
(scripts/build_venvs.py, `make venvs`) and the demo run with every job in the venv of its
rule's env (SEGAUG_VENVS), as on a cluster; a package missing from an env fails the run naming
the rule and the module.

Needs the venvs: SEGAUG_VENVS=DIR, or .venvs/ of the checkout (make venvs). Skipped without
them, unless SEGAUG_ENV_TESTS=1 (CI), which makes their absence a failure.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_envs import RULES, envs_of, third_party_imports
from test_workflow import DELETE, TINY, write_config

from conftest import ROOT, snakemake_bin

pytestmark = pytest.mark.workflow

VENVS = Path(os.environ.get("SEGAUG_VENVS") or ROOT / ".venvs").resolve()
ENVS = sorted(p.stem for p in (ROOT / "envs").glob("*.yaml"))
FORCED = os.environ.get("SEGAUG_ENV_TESTS") == "1"
_missing = [e for e in ENVS if not (VENVS / e / "bin" / "segaug-shell").exists()]
if _missing:
    if FORCED:
        raise RuntimeError(f"SEGAUG_ENV_TESTS=1 but no venv for {', '.join(_missing)} in {VENVS}: make venvs")
    pytest.skip(f"no venvs in {VENVS} for {', '.join(_missing)} (make venvs)", allow_module_level=True)


def run(*args, cwd: Path, venvs: Path = VENVS, snakefile: Path = ROOT / "Snakefile", timeout=3600):
    """snakemake with SEGAUG_VENVS; PATH without this interpreter's venv, as on a bare host."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent)
    env = {**os.environ, "SEGAUG_VENVS": str(venvs), "PATH": path, "PYTHONPATH": ""}
    cmd = [snakemake_bin(), "-s", str(snakefile), "--directory", str(cwd), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    p.out = p.stdout + p.stderr
    return p


def test_each_env_imports_what_its_rules_import():
    """Rules a demo cannot run (downloads, prefetch_*, surfaces with real models): each env's
    venv imports every third-party module its rules' scripts import (test_envs' scan)."""
    needs: dict[str, set[str]] = {}
    for envs, script, _ in RULES.values():
        if not (envs and script):
            continue
        for env, exempt in envs_of(envs).items():
            needs.setdefault(Path(env).stem, set()).update(third_party_imports(ROOT / "scripts" / script) - exempt)
    assert set(needs) == set(ENVS), needs.keys()
    for env, modules in sorted(needs.items()):
        code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
        # mmseg's packages need segaug's stand-in for mmcv's compiled ops, as the backend installs it
        if env == "mmseg":
            code = "from segaug.train import mmcv_standin; mmcv_standin.install()\n" + code
        p = subprocess.run(
            [str(VENVS / env / "bin" / "python"), "-c", code, *sorted(modules)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            timeout=900,
        )
        assert p.returncode == 0, f"{env}: {p.stderr[-2000:]}"


# One seed of the demo on the tiny setting, every rule it has: the generative chain (tiny
# models, captions, priors, plan, shards, synthetic set, quality), all four paste methods, the
# three losses, Table 1's models, an mmseg-backend model (its train/evaluate jobs go to
# envs/mmseg.yaml), open-vocabulary surface maps (tiny CLIPSeg; the surface rules keep to the
# label's classes, which VLM paste needs) and every table and figure.
DEMO = {
    **TINY,
    "seeds": [0],
    "models.pspnet_r50_mmseg": {
        "arch": "PSPNet",
        "backend": "mmseg",
        "config": "pspnet_r50-d8",
        "backbone_weights": None,
        "train": {"steps": 2, "val_interval": 2, "batch_size": 2},
    },
    "table1.models": ["pspnet_r18", "mask2former_tiny", "pspnet_r50_mmseg"],
    "context.surfaces": {
        "source": "clipseg",
        "names": ["road", "water", "pavement"],
        "model": "results/demo/tiny/clipseg",
    },
    "ablations.table4": ["origin", "gen-default"],
    "ablations.table3": DELETE,
    "ablations.table5": DELETE,
    "ablations.table6": DELETE,
    "ablations.table7": DELETE,
}


def declared_env(rule: str, wildcards: str) -> str:
    env = RULES[rule][0]
    if env == "train_env":
        model = re.search(r"model=(\w+)", wildcards).group(1)
        return "mmseg" if model.endswith("_mmseg") else "train"
    return Path(env).stem


def test_demo_runs_with_every_job_in_its_rules_env(tmp_path):
    cfg = write_config(tmp_path, **DEMO)
    targets = ["all", "ablations", "results/demo/tables/seeds/seed0.csv"]
    p = run(*targets, "--cores", "2", "--configfile", str(cfg), "--show-failed-logs", cwd=tmp_path)
    assert p.returncode == 0, p.out[-8000:]
    jobs = re.findall(
        r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:    .*\n)+?)    resources: [^\n]*shell_exec=([^,\s]+)",
        p.out,  # Snakemake logs its jobs on stderr
        re.M,
    )
    ran = {rule for rule, _, _ in jobs}
    for rule, block, shell in jobs:
        wildcards = (re.search(r"wildcards: (.*)", block) or [None, ""])[1]
        env = declared_env(rule, wildcards)
        assert shell == str(VENVS / env / "bin" / "segaug-shell"), (rule, wildcards, shell)
    expected = {r for r, (env, _, runs_code) in RULES.items() if runs_code} - {
        "download_dataset",
        "download_list",
        "prefetch_weights",
        "prefetch_hub",
        "prefetch_inception",
        "verify_dataset",
    }
    assert expected <= ran, sorted(expected - ran)
    assert {"train", "evaluate"} <= {r for r, b, s in jobs if "/mmseg/" in s}
    print(f"demo, one seed, {len(jobs)} jobs in their rules' venvs")


def test_a_package_missing_from_an_env_fails_naming_the_rule_and_the_module(tmp_path):
    """envs/data.yaml without pillow (nothing else there pulls it in), built as the data venv of
    a copy of the checkout: the first job in that env fails, and the console names the rule and
    the missing module."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("Snakefile", "rules", "scripts", "src", "config", "envs", "docs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, clone / name)
    spec = clone / "envs" / "data.yaml"
    text = spec.read_text()
    assert "      - pillow==" in text
    spec.write_text(re.sub(r"\n      - pillow==[^\n]*", "", text))
    venvs = tmp_path / "venvs"
    venvs.mkdir()
    for env in ENVS:
        if env != "data":
            (venvs / env).symlink_to(VENVS / env)
    b = subprocess.run(
        [sys.executable, str(clone / "scripts" / "build_venvs.py"), "--envs-dir", str(clone / "envs")]
        + ["--dest", str(venvs), "data"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
        timeout=900,
    )
    assert b.returncode == 0, b.stdout + b.stderr
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_config(work, **{**TINY, "seeds": [0]})
    p = run(
        "results/demo/shapes/dataset",
        "--cores",
        "1",
        "--configfile",
        str(cfg),
        "--show-failed-logs",
        cwd=work,
        venvs=venvs,
        snakefile=clone / "Snakefile",
    )
    assert p.returncode != 0, p.out[-4000:]
    assert "Error in rule prepare_dataset" in p.out, p.out[-4000:]
    assert "No module named 'PIL'" in p.out, p.out[-4000:]
