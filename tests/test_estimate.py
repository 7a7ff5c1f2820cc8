"""`segaug estimate` (the cost sheet) and `segaug calibrate`: the job counts against the dry run's
job list, the arithmetic against hand computation, and a calibration made on the CPU."""

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from segaug.errors import SegaugError
from segaug.estimate import Figures, dry_run_jobs, estimate, parse_dry_run, run_estimate
from segaug.workflow.config import expand_variants
from segaug.workflow.plan import plan_name

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config" / "config.yaml"
DEMO = ROOT / "config" / "demo.yaml"


@pytest.fixture(scope="module")
def paper_jobs():
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return dry_run_jobs(PAPER)
    finally:
        os.chdir(cwd)


def _dry_run_text(configfile) -> str:
    p = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(configfile)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return p.stdout + p.stderr


def test_job_list_is_the_dry_runs(paper_jobs):
    """Every job of `snakemake -n` is read once, with its rule and wildcards, and the counts per
    rule are those of the dry run's own Job stats table (303 for the paper config)."""
    jobs, stats = paper_jobs
    assert stats["total"] == len(jobs) > 0
    assert Counter(j.rule for j in jobs) == {k: v for k, v in stats.items() if k != "total"}
    train = [j for j in jobs if j.rule == "train"]
    assert len(train) == 108
    assert {j.wildcards["model"] for j in train} == {"deeplabv3plus_r50", "pspnet_r50", "mask2former_r50"}
    assert {j.wildcards["seed"] for j in train} == {"0", "1", "2"}
    # an independent count from the dry run's own text: one "jobid:" per job
    text = _dry_run_text(PAPER)
    assert len({ln.strip() for ln in text.splitlines() if ln.strip().startswith("jobid:")}) == stats["total"]


def test_a_job_list_that_disagrees_with_the_job_stats_is_an_error(monkeypatch):
    text = "Job stats:\njob count\n---- ----\ntrain 2\ntotal 2\n\nrule train:\n    jobid: 1\n    wildcards: a=1, b=x\n"
    jobs, stats = parse_dry_run(text)
    assert stats == {"train": 2, "total": 2} and len(jobs) == 1 and jobs[0].wildcards == {"a": "1", "b": "x"}
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=text, stderr=""))
    with pytest.raises(SegaugError, match="could not read the dry run's job list"):
        dry_run_jobs(PAPER)


def test_sheet_counts_and_training_arithmetic(paper_jobs, tmp_path, monkeypatch):
    """The sheet's job counts equal the dry run's per rule, the predicted shards equal the
    plans' sizes / shard_size, and the training GPU-hours equal steps x s/step + validations
    x val images x s/image summed over the dry run's training jobs, from a calibration file."""
    monkeypatch.chdir(ROOT)
    jobs, stats = paper_jobs
    cfg = yaml.safe_load(PAPER.read_text())
    cal = {
        "device": "cuda",
        "device_name": "test GPU",
        "date": "today",
        "host": "h",
        "train": {
            "deeplabv3plus_r50": {
                "s_per_step": 0.5,
                "batch_size": 16,
                "crop_size": [512, 512],
                "gpu_mem_gb": 20.0,
                "s_per_val_image": 0.02,
                "params_m": 40,
            },
            "pspnet_r50": {
                "s_per_step": 0.4,
                "batch_size": 8,
                "crop_size": [512, 512],
                "gpu_mem_gb": 10.0,
                "s_per_val_image": 0.01,
                "params_m": 50,
            },
            "mask2former_r50": {
                "s_per_step": 1.5,
                "batch_size": 16,
                "crop_size": [512, 512],
                "gpu_mem_gb": 12.0,
                "s_per_val_image": 0.05,
                "params_m": 45,
            },
        },
        "generate": {
            "adapter_lineart": {"s_per_image": 2.0, "steps": 30, "resolution": 1024, "load_s": 10.0, "gpu_mem_gb": 15.0}
        },
    }
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(cal))
    sheet = estimate(cfg, jobs, Figures.load(path))
    rows = {r.rule: r for r in sheet["rows"]}
    for rule, n in stats.items():
        if rule != "total":
            assert rows[rule].jobs == n, rule

    # generation shards: |D_gen| of balance-auto ~ |D_origin| per split, shard_size 64, 3 seeds
    n_train = {"voc7": 209, "voc12_92": 92, "voc12_183": 183, "voc12_366": 366, "voc12_732": 732, "voc12_1464": 1464}
    shards = sum(math.ceil(n / 64) for n in n_train.values()) * 3
    assert rows["generate"].jobs == rows["generate"].predicted == shards == 150
    assert sheet["total"].jobs == stats["total"] + 150
    images = sum(n_train.values()) * 3
    assert rows["generate"].gpu_h * 3600 == pytest.approx(150 * 10.0 + images * 2.0)

    n_val = {s: (213 if s == "voc7" else 1449) for s in n_train}
    expect = 0.0
    for j in (j for j in jobs if j.rule == "train"):
        c = cal["train"][j.wildcards["model"]]
        scale = 16 / c["batch_size"]  # the paper recipe's batch 16 vs the calibrated batch
        expect += 30000 * c["s_per_step"] * scale + 30 * n_val[j.wildcards["split"]] * c["s_per_val_image"]
    assert rows["train"].gpu_h * 3600 == pytest.approx(expect)
    assert rows["train"].gpu_mem_gb == pytest.approx(20.0)  # pspnet: 10 GB at batch 8 -> 20 at 16
    assert rows["train"].disk_gb == pytest.approx(36 * (40 + 50 + 45) * 4e6 / 1e9)


def test_published_figures_and_gpu_factor(paper_jobs, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = yaml.safe_load(PAPER.read_text())
    a100 = estimate(cfg, paper_jobs[0], Figures.load(None, "A100"))
    h100 = estimate(cfg, paper_jobs[0], Figures.load(None, "H100"))
    ta = next(r for r in a100["rows"] if r.rule == "train")
    th = next(r for r in h100["rows"] if r.rule == "train")
    assert th.gpu_h == pytest.approx(ta.gpu_h * 0.674)
    # every source printed: the SDXL and MMSeg figures are cited
    text = run_estimate(PAPER, calibration=None)
    assert "stable-diffusion-xl-1.0-tensorrt" in text and "mmsegmentation" in text
    assert "* 150 generation shards predicted" in text
    with pytest.raises(SegaugError, match="--gpu"):
        Figures.load(None, "TPU")


def test_variant_plans_drive_predicted_sizes():
    cfg = yaml.safe_load(PAPER.read_text())
    v = expand_variants(cfg)
    assert plan_name(v["n27"]) == "balance-27"
    fig = Figures.load(None)
    from segaug.estimate import Sizes

    s = Sizes({**cfg, "outdir": "/nonexistent"}, fig)
    assert s.gen_images("voc7", "voc2007", "balance-27")[0] == 15 * 27 - 190  # the paper's 216 (+-1)
    assert s.gen_images("voc7", "voc2007", "uniform-2")[0] == 418


@pytest.mark.workflow
def test_cpu_calibration_feeds_the_estimate(tmp_path):
    """`segaug calibrate --tiny` on the CPU times each demo model and generator; `segaug
    estimate` then uses those figures (cited as the calibration) and its training hours are the
    calibration's s/step x steps + validations, scaled from the calibrated batch and crop."""
    cal = tmp_path / "cal.json"
    env_cmd = [sys.executable, "-m", "segaug.cli"]
    subprocess.run(
        [
            *env_cmd,
            "calibrate",
            "--configfile",
            str(DEMO),
            "--tiny",
            "--steps",
            "1",
            "--images",
            "1",
            "--out",
            str(cal),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    c = json.loads(cal.read_text())
    assert c["device"] == "cpu" and c["tiny"] and not c["skipped"], c["skipped"]
    assert set(c["train"]) == {"deeplabv3plus_mbv2", "pspnet_r18", "mask2former_tiny"}
    assert all(t["s_per_step"] > 0 and t["s_per_val_image"] > 0 for t in c["train"].values())
    assert "adapter_lineart" in c["generate"] and c["generate"]["adapter_lineart"]["steps"] == 2

    p = subprocess.run(
        [*env_cmd, "estimate", "--configfile", str(DEMO), "--calibration", str(cal), "--json", "--forceall"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    sheet = json.loads(p.stdout)
    assert any(v[0] == "calibration" for v in sheet["sources"].values())
    demo = yaml.safe_load(DEMO.read_text())
    expect = 0.0
    jobs, _ = dry_run_jobs_in(ROOT, DEMO)
    for j in (j for j in jobs if j.rule == "train"):
        m = j.wildcards["model"]
        tc = {**demo["train"], **demo["models"][m].get("train", {})}
        t = c["train"][m]
        px = tc["batch_size"] * tc["crop_size"][0] * tc["crop_size"][1]
        ref = t["batch_size"] * t["crop_size"][0] * t["crop_size"][1]
        vals = tc["steps"] // tc["val_interval"]
        expect += (
            tc["steps"] * t["s_per_step"] * px / ref
            + vals * demo["datasets"]["shapes"]["num_val"] * t["s_per_val_image"]
        )
    train = next(r for r in sheet["rows"] if r["rule"] == "train")
    assert train["jobs"] == 36
    assert train["gpu_h"] * 3600 == pytest.approx(expect)
    assert train["gpu_mem_gb"] == 0  # a CPU calibration reports no GPU memory

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    p = subprocess.run(
        [*env_cmd, "estimate", "--configfile", str(DEMO), "--calibration", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith(f"error: {bad}")


def dry_run_jobs_in(root, configfile):
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        return dry_run_jobs(configfile, forceall=True)
    finally:
        os.chdir(cwd)
