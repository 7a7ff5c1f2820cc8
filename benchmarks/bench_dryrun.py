#!/usr/bin/env python
"""Wall time of `snakemake -n` on the paper config (DAG of the full Table 1), and job counts."""

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(repeats: int = 3) -> None:
    exe = Path(sys.executable).with_name("snakemake")
    exe = str(exe) if exe.exists() else shutil.which("snakemake")
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            p = subprocess.run(
                [exe, "-n", "-s", str(ROOT / "Snakefile"), "--directory", tmp],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            times.append(time.perf_counter() - t0)
    total = re.search(r"^total\s+(\d+)", p.stdout, re.M)
    train = re.search(r"^train\s+(\d+)", p.stdout, re.M)
    print(f"snakemake -n (paper config): best {min(times):.2f} s, mean {sum(times) / len(times):.2f} s "
          f"over {repeats} runs; {total.group(1)} jobs planned, {train.group(1)} of them training")


if __name__ == "__main__":
    main()
