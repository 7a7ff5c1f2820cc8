import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Tests never reach a model hub: tiny models are built from configs with random weights.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def snakemake_bin() -> str:
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else shutil.which("snakemake")


def run_snakemake(*args, cwd=ROOT, check=True, timeout=1800):
    """Run the real snakemake CLI on this repository's Snakefile; returns CompletedProcess."""
    cmd = [snakemake_bin(), "-s", str(ROOT / "Snakefile"), "--directory", str(cwd), *args]
    # rules call `python`: make it this interpreter (the venv's) whatever PATH the caller had
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-4000:]}\n{p.stderr[-6000:]}"
        )
    return p


@pytest.fixture
def shared_data():
    if not SHARED_DATA.exists():
        pytest.skip("the U2PL reference split lists are not beside the repository (developer checkouts only)")
    return SHARED_DATA
