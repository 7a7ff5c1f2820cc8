#!/usr/bin/env python
"""The tiny demo through a real local SLURM cluster (tests/slurm/cluster.sh) vs local execution:
jobs submitted and wall time. Needs root and SLURM installed (`bash tests/slurm/cluster.sh install`).
Prints figures; not a test."""

import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
spec = importlib.util.spec_from_file_location("segaug_slurm_helpers", ROOT / "tests/slurm/helpers.py")
helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)

from test_workflow import TINY, write_config  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="segaug-bench-", dir="/tmp") as tmp:
        tmp = Path(tmp)
        local, onslurm = tmp / "local", tmp / "slurm"
        for d in (local, onslurm):
            d.mkdir()
        t0 = time.perf_counter()
        p = subprocess.run(
            [
                helpers.snakemake_bin(),
                "-s",
                str(ROOT / "Snakefile"),
                "--directory",
                str(local),
                "--cores",
                "2",
                "--configfile",
                str(write_config(local, **TINY)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        t_local = time.perf_counter() - t0
        n_local = int(re.search(r"^total\s+(\d+)", p.stdout + p.stderr, re.M).group(1))
        with helpers.LocalSlurmCluster(tmp / "cluster") as cluster:
            p = helpers.run_demo_on_slurm(cluster, onslurm, write_config(onslurm, **TINY))
            if p.returncode:
                sys.exit(p.log)
        submitted = len(re.findall(r"submitted with SLURM jobid", p.stdout + p.stderr))
        same = (local / "results/demo/tables/table1.csv").read_bytes() == (
            onslurm / "results/demo/tables/table1.csv"
        ).read_bytes()
    print(f"tiny demo, local --cores 2: {n_local} jobs, {t_local:.1f} s")
    print(
        f"tiny demo, local SLURM cluster (sacct status): {submitted} jobs submitted "
        f"(+ localrules on the host), {p.wall_seconds:.1f} s; cluster start {cluster.start_seconds:.1f} s"
    )
    print(f"Table 1 identical: {same}")


if __name__ == "__main__":
    main()
