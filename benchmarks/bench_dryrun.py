#!/usr/bin/env python
"""The paper config's DAG: `snakemake -n` wall time, jobs planned per rule, and how many of them
a cluster run submits (localrules run on the submit host), with and without grouping each
training with its evaluation into one submission."""

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ["--groups", "train=train_eval", "evaluate=train_eval"]


def snakemake(*args: str, cwd: str) -> str:
    exe = Path(sys.executable).with_name("snakemake")
    exe = str(exe) if exe.exists() else shutil.which("snakemake")
    cmd = [exe, "-s", str(ROOT / "Snakefile"), "--directory", cwd, *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def local_rules() -> set[str]:
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", (ROOT / "Snakefile").read_text(), re.M)
    return {name.strip(" ,") for name in block.group(1).split()}


def main(repeats: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = snakemake("-n", cwd=tmp)
            times.append(time.perf_counter() - t0)
        counts = {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", out, re.M)}
        total = counts.pop("total")
        local = sum(n for rule, n in counts.items() if rule in local_rules())
        grouped = snakemake("-n", "--executor", "slurm", "--jobs", "10", *GROUPS, cwd=tmp)
        group_jobs = len(re.findall(r"Group job train_eval", grouped))
    print(
        f"snakemake -n (paper config): best {min(times):.2f} s, mean {sum(times) / len(times):.2f} s over {repeats} runs"
    )
    print(f"jobs planned: {total} ({', '.join(f'{r} {n}' for r, n in counts.items())})")
    submitted = total - local
    print(f"submitted to the cluster: {submitted} (the other {local} are localrules on the submit host)")
    grouped_submissions = submitted - 2 * group_jobs + group_jobs
    print(f"with {' '.join(GROUPS)}: {grouped_submissions} submissions ({group_jobs} train+evaluate group jobs)")


if __name__ == "__main__":
    main()
