"""The cluster path without surprises: the profile's dry run on a host without conda, the one
line a real run stops with, a wrong SEGAUG_VENVS, and `make install-profile` that refuses to
hide behind another profile."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, snakemake_bin

NO_CONDA_PATH = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])


def snakemake(*args, cwd, **env):
    if any(shutil.which(c, path=NO_CONDA_PATH) for c in ("conda", "mamba")):
        pytest.skip("conda is installed in /usr/bin or /bin: no conda-less host to test")
    full_env = {**os.environ, "PATH": NO_CONDA_PATH, "SNAKEMAKE_SLURM_ACCOUNT": "lab", **env}
    if "SEGAUG_VENVS" not in env:
        full_env.pop("SEGAUG_VENVS", None)
    cmd = [snakemake_bin(), "-s", str(ROOT / "Snakefile"), "--directory", str(cwd), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600)
    p.out = p.stdout + p.stderr
    return p


def test_profile_dry_run_without_conda_plans_and_says_what_a_run_needs(tmp_path):
    p = snakemake("results/tables/table1.csv", "-n", "--profile", str(ROOT / "profiles" / "slurm"), cwd=tmp_path)
    assert p.returncode == 0, p.out[-3000:]
    assert "Error running conda info" not in p.out
    assert "no conda on this host (a dry run only); a real run needs: install conda or mamba" in p.out
    assert "train " in p.out and "SEGAUG_VENVS=DIR" in p.out


def test_a_real_run_without_conda_stops_with_one_line(tmp_path):
    p = snakemake("results/tables/table1.csv", "--sdm", "conda", "--cores", "1", cwd=tmp_path)
    assert p.returncode != 0
    lines = [line for line in p.out.splitlines() if "no conda or mamba on PATH" in line]
    assert len(lines) == 1, p.out[-3000:]
    for fix in ("install conda or mamba", "make venvs VENVS=DIR", "SEGAUG_VENVS=DIR", "--sdm env-modules"):
        assert fix in lines[0]
    assert not (tmp_path / "results").exists()  # nothing ran


def test_segaug_venvs_without_the_venvs_is_one_line_naming_the_fix(tmp_path):
    venvs = tmp_path / "venvs"
    p = snakemake("-n", cwd=tmp_path, SEGAUG_VENVS=str(venvs))
    assert p.returncode != 0
    (line,) = [line for line in p.out.splitlines() if line.startswith("SEGAUG_VENVS=")]
    assert f"no venv {venvs}/train" in line and "scripts/build_venvs.py --dest" in line, line


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_install_profile_links_once_and_refuses_another_profile(tmp_path):
    def install():
        return subprocess.run(
            ["make", "-s", "-C", str(ROOT), "install-profile", f"HOME={tmp_path}"],
            capture_output=True,
            text=True,
            timeout=60,
        )

    link = tmp_path / ".config" / "snakemake" / "slurm"
    p = install()
    assert p.returncode == 0 and link.resolve() == (ROOT / "profiles" / "slurm").resolve(), p.stderr
    p = install()
    assert p.returncode == 0 and "already uses" in p.stdout
    link.unlink()
    link.mkdir()  # a profile of the same name, not ours
    (link / "config.yaml").write_text("executor: slurm\n")
    p = install()
    assert p.returncode != 0
    assert f"{link} exists and is not a link to" in p.stderr
    assert sorted(x.name for x in link.iterdir()) == ["config.yaml"]  # nothing put inside it
