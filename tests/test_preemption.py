"""A training job killed mid-run (timeout, preemption, node failure) and run again resumes from
its last checkpoint and ends exactly where an uninterrupted run ends: the same curve, metrics
and model file, byte for byte."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from test_workflow import TINY, write_config

from conftest import ROOT, run_snakemake, snakemake_bin

RUN = "shapes/full/{kind}/pspnet_r18/origin/ce/seed0"
SETTINGS = {**TINY, "seeds": [0], "train.steps": 80, "train.val_interval": 10}


@pytest.mark.workflow
def test_killed_training_resumes_to_the_same_result(tmp_path):
    metrics = f"results/demo/{RUN.format(kind='eval')}/metrics.json"
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for d in (straight, killed):
        d.mkdir()
    run_snakemake(metrics, "--cores", "1", "--configfile", str(write_config(straight, **SETTINGS)), cwd=straight)

    cfg = write_config(killed, **SETTINGS)
    state = killed / "results/demo" / RUN.format(kind="train") / "state/last.ckpt"
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    # --retries as in the cluster profile: the killed job is run again by Snakemake
    cmd = [
        snakemake_bin(),
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(killed),
        metrics,
        "--cores",
        "1",
        "--configfile",
        str(cfg),
        "--retries",
        "1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert state.exists(), "training finished or failed before its first checkpoint"
    jobs = [
        p
        for p in psutil.process_iter(["cmdline", "cwd"])
        if any(a.endswith("scripts/train.py") for a in p.info["cmdline"] or []) and p.info["cwd"] == str(killed)
    ]
    assert jobs, "no training process found"
    for job in jobs:
        job.send_signal(signal.SIGKILL)  # as SLURM ends a preempted or timed-out job
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "Error in rule train" in out  # the kill was seen, then the retry succeeded
    log = (killed / "results/demo/logs/train/shapes/full/pspnet_r18/origin/ce/seed0.log").read_text()
    assert "resuming from" in log
    for name in (f"{RUN.format(kind='train')}/curve.csv", f"{RUN.format(kind='eval')}/metrics.json"):
        a = (straight / "results/demo" / name).read_text()
        b = (killed / "results/demo" / name).read_text()
        if name.endswith(".json"):  # the paths inside differ, the numbers must not
            a, b = json.loads(a), json.loads(b)
            assert a["miou"] == b["miou"] and a["iou"] == b["iou"]
        else:
            assert a == b
    model = f"{RUN.format(kind='train')}/model.pt"
    assert (killed / "results/demo" / model).read_bytes() == (straight / "results/demo" / model).read_bytes()
    assert not state.exists()  # a finished run drops its checkpoint
