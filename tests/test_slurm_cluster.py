"""Snakemake's SLURM executor against a real one-node SLURM cluster on localhost.

tests/slurm/cluster.sh starts munged, a private mariadbd + slurmdbd (accounting) and
slurmctld + slurmd in a temporary directory; the toy workflow (tests/slurm/toy/Snakefile)
runs through `snakemake --executor slurm`. See docs/cluster.md.

Skipped unless SLURM is installed (sbatch on PATH) or SEGAUG_SLURM_TESTS=1; with
SEGAUG_SLURM_TESTS=1 the packages are installed (apt-get, root) when missing.
"""

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

FORCED = os.environ.get("SEGAUG_SLURM_TESTS") == "1"

if not FORCED:
    if shutil.which("sbatch") is None:
        pytest.skip(
            "SLURM is not installed (no sbatch on PATH); set SEGAUG_SLURM_TESTS=1 to install "
            "it with tests/slurm/cluster.sh install (apt-get, root) and run these tests",
            allow_module_level=True,
        )
    _missing = [b for b in ("slurmctld", "slurmd", "munged") if shutil.which(b) is None]
    if _missing or os.geteuid() != 0:
        pytest.skip(
            "sbatch is installed but the local test cluster cannot run here "
            f"({'missing ' + ', '.join(_missing) if _missing else 'not root'}); "
            "set SEGAUG_SLURM_TESTS=1 to force",
            allow_module_level=True,
        )

_spec = importlib.util.spec_from_file_location("segaug_slurm_helpers", Path(__file__).parent / "slurm" / "helpers.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

SNAKEMAKE_TIMEOUT = 240  # s; a toy run takes ~30 s
# steps of the wall-time test: more than SLURM's smallest limit (1 min) plus its kill slack allows
# (a quiet 2-core machine trains 600 in 46 s: too few)
WALLTIME_STEPS = int(os.environ.get("SEGAUG_WALLTIME_STEPS", "2400"))


class _Clusters:
    """One cluster at a time: asking for the other variant stops the running one first."""

    def __init__(self, base: Path):
        self.base = base
        self.current = None

    def get(self, accounting: bool):
        c = self.current
        if c is not None and c.accounting == accounting:
            return c
        self.stop()
        d = self.base / ("acct" if accounting else "noacct")
        c = helpers.LocalSlurmCluster(d, accounting=accounting)
        self.current = c
        c.start()
        print(f"cluster ({'accounting' if accounting else 'no accounting'}) up in {c.start_seconds:.1f}s")
        return c

    def stop(self):
        if self.current is not None:
            self.current.stop()
            self.current = None


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    if FORCED:
        helpers.install()
    base = tmp_path_factory.mktemp("slurm")
    own_tmp = None
    if len(str(base)) > 60:  # unix socket paths under it must stay short
        own_tmp = base = Path(tempfile.mkdtemp(prefix="segaug-slurm-", dir="/tmp"))
    mgr = _Clusters(base)
    # CI timeouts send SIGTERM, which would end pytest without teardown and leave the
    # daemons running: turn it into KeyboardInterrupt so the finally below runs.
    old_term = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        yield mgr
    finally:
        mgr.stop()  # also after failures, KeyboardInterrupt and SIGTERM
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, old_term)
        if own_tmp is not None:
            shutil.rmtree(own_tmp, ignore_errors=True)


@pytest.fixture
def slurm_cluster(clusters):
    return clusters.get(accounting=True)


@pytest.fixture
def slurm_cluster_noacct(clusters):
    return clusters.get(accounting=False)


def run_toy(cluster, workdir: Path, *targets, status_command=None):
    args = [
        *targets,  # before the nargs="*" options below
        "-s",
        str(helpers.TOY_SNAKEFILE),
        "--directory",
        str(workdir),
        *helpers.slurm_cli_args(status_command, logdir=workdir / "slurm_logs"),
        # like profiles/slurm: GPU rules go to the gpu partition
        "--set-resources",
        "gpu_step:slurm_partition=gpu",
        *helpers.slurm_default_resources(partition="cpu"),
    ]
    try:
        p = helpers.run_snakemake(args, cluster.env, timeout=SNAKEMAKE_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"snakemake did not finish in {SNAKEMAKE_TIMEOUT}s: snakemake {' '.join(args)}\n"
            f"{(e.stdout or b'')[-3000:]!r}\n{(e.stderr or b'')[-5000:]!r}\n"
            + cluster.run("squeue", "--states=all", check=False).stdout
            + cluster.logs_tail()
        ) from None
    p.log = f"$ {' '.join(p.args)}\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}"
    print(
        f"snakemake {' '.join(targets) or '(all)'} "
        f"[{status_command or 'default status command'}]: {p.wall_seconds:.1f}s rc={p.returncode}"
    )
    return p


def job_id_in(path: Path) -> str:
    first = path.read_text().splitlines()[0].strip()
    assert re.fullmatch(r"\d+", first), f"{path}: no SLURM job id, got {first!r}"
    return first


def wait_for(fn, timeout=20.0, interval=0.5):
    """fn() until it returns a truthy value (sacct lags slurmctld by a second or two)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def test_toy_workflow_with_accounting(slurm_cluster, tmp_path):
    p = run_toy(slurm_cluster, tmp_path)
    assert p.returncode == 0, p.log

    ids = {
        rule: job_id_in(tmp_path / "out" / f"{name}.txt")
        for rule, name in [("prep", "prep"), ("cpu_step", "cpu"), ("gpu_step", "gpu")]
    }
    assert len(set(ids.values())) == 3, ids

    def all_completed():
        rows = slurm_cluster.sacct(ids.values())
        return rows if all(rows.get(i, {}).get("State") == "COMPLETED" for i in ids.values()) else None

    rows = wait_for(all_completed)
    assert rows, f"sacct does not list all of {ids} as COMPLETED:\n{slurm_cluster.sacct(ids.values())}"
    for rule, jid in ids.items():
        assert rows[jid]["Account"] == helpers.ACCOUNT, rows[jid]
        log = tmp_path / "slurm_logs" / f"rule_{rule}" / f"{jid}.log"
        assert log.exists(), f"--slurm-keep-successful-logs: no {log}"

    gpu = rows[ids["gpu_step"]]
    assert gpu["Partition"] == "gpu", gpu
    assert "gres/gpu=1" in gpu["AllocTRES"], gpu
    for rule in ("prep", "cpu_step"):
        assert rows[ids[rule]]["Partition"] == "cpu", rows[ids[rule]]
        assert "gres/gpu" not in rows[ids[rule]]["AllocTRES"], rows[ids[rule]]
    # what the job itself saw
    assert "partition=gpu" in (tmp_path / "out" / "gpu.txt").read_text()


def test_failing_rule_is_reported_with_accounting(slurm_cluster, tmp_path):
    p = run_toy(slurm_cluster, tmp_path, "out/fail.txt")
    assert p.returncode != 0, p.log
    out = p.stdout + p.stderr
    m = re.search(r"submitted with SLURM jobid (\d+)", out)
    assert m, p.log
    jid = m.group(1)
    assert f"SLURM-job '{jid}' failed" in out, p.log
    assert not (tmp_path / "out" / "fail.txt").exists()
    row = wait_for(lambda: slurm_cluster.sacct([jid]).get(jid))
    assert row and row["State"] == "FAILED", row
    log = tmp_path / "slurm_logs" / "rule_fail" / f"{jid}.log"
    assert "failing on purpose" in log.read_text(), log


def test_unknown_account_is_refused_with_accounting(slurm_cluster):
    # AccountingStorageEnforce=associations: the account the profile names must exist
    p = slurm_cluster.run("sbatch", "-A", "no_such_account", "--wrap", "true", check=False)
    assert p.returncode != 0
    assert "Invalid account" in p.stderr, p.stderr


def test_toy_workflow_without_accounting_squeue(slurm_cluster_noacct, tmp_path):
    cl = slurm_cluster_noacct
    p = run_toy(cl, tmp_path, status_command="squeue")
    assert p.returncode == 0, p.log
    assert "Falling back to 'sacct'" not in p.stdout + p.stderr, p.log

    ids = {name: job_id_in(tmp_path / "out" / f"{name}.txt") for name in ("prep", "cpu", "gpu")}
    q = cl.run("squeue", "--states=all", "--noheader", "--format=%i|%T|%P").stdout
    states = {i: (s, part) for i, s, part in (line.split("|") for line in q.split())}
    for name, jid in ids.items():
        assert states.get(jid, ("?",))[0] == "COMPLETED", (name, jid, q)
    assert states[ids["gpu"]][1] == "gpu"
    job = cl.scontrol_job(ids["gpu"])
    assert job.get("Partition") == "gpu", job
    assert "gpu:1" in job.get("TresPerJob", ""), job


# ---------------------------------------------------------------- the real workflow on SLURM

REPO = helpers.REPO


@pytest.mark.workflow
def test_demo_workflow_through_the_slurm_profile(slurm_cluster, tmp_path):
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from test_workflow import DELETE, TINY, write_config

    from conftest import run_snakemake as run_local

    local, onslurm = tmp_path / "local", tmp_path / "slurm"
    for d in (local, onslurm):
        d.mkdir()
    # the generative branch, Mask2Former and the thesis are tested locally
    small = {**TINY, "table1.d_final": "paste-random", "table1.models": ["pspnet_r18"], "thesis": DELETE}
    run_local("--cores", "2", "--configfile", str(write_config(local, **small)), cwd=local)

    p = helpers.run_demo_on_slurm(slurm_cluster, onslurm, write_config(onslurm, **small))
    assert p.returncode == 0, p.log
    out = p.stdout + p.stderr
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", out)
    # prepare, split, pool, 2 pastes, 4 trainings, 4 evaluations; downloads and tables are local
    assert len(submitted) == 13, p.log

    def all_completed():
        rows = slurm_cluster.sacct(submitted)
        done = len(rows) == 13 and all(r["State"] == "COMPLETED" for r in rows.values())
        return rows if done else None

    rows = wait_for(all_completed, timeout=30)
    assert rows, slurm_cluster.sacct(submitted)
    logs = {f.relative_to(onslurm / "slurm_logs").parts[0] for f in (onslurm / "slurm_logs").rglob("*.log")}
    assert {"rule_train", "rule_evaluate", "rule_paste", "rule_pool"} <= set(logs), sorted(logs)
    assert "rule_table1" not in logs  # a localrule: ran on the submit host
    on_gpu = [r for r in rows.values() if r["Partition"] == "gpu"]
    assert len(on_gpu) == 8 and all("gres/gpu=1" in r["AllocTRES"] for r in on_gpu), rows
    table = "results/demo/tables/table1.csv"
    assert (onslurm / table).read_bytes() == (local / table).read_bytes()


@pytest.mark.workflow
def test_walltime_kill_is_named_and_the_rerun_resumes_to_the_same_model(slurm_cluster, tmp_path):
    """A training whose `runtime` is shorter than it needs: SLURM kills it (TIMEOUT), the
    console names the job, the state and the profile key to raise; nothing half-written is
    kept as an output; run again, it resumes from its checkpoint and ends with the bytes of an
    uninterrupted run."""
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from test_workflow import DELETE, TINY, write_config

    from conftest import run_snakemake as run_local

    run = "results/demo/shapes/full/train/pspnet_r18/origin/ce/seed0"
    settings = {
        **TINY,
        "seeds": [0],
        "table1.models": ["pspnet_r18"],
        "table1.d_final": "paste-random",
        "thesis": DELETE,
        "train.steps": WALLTIME_STEPS,
        "train.val_interval": 20,  # a checkpoint within the first minute even on a loaded machine
    }
    straight, onslurm = tmp_path / "straight", tmp_path / "slurm"
    for d in (straight, onslurm):
        d.mkdir()
    t0 = time.monotonic()
    run_local(f"{run}/model.pt", "--cores", "1", "--configfile", str(write_config(straight, **settings)), cwd=straight)
    uninterrupted = time.monotonic() - t0
    print(f"uninterrupted training (local, incl. data): {uninterrupted:.0f}s")

    cfg = write_config(onslurm, **settings)
    short = helpers.small_resources({"train:runtime": 1})  # minutes: SLURM's smallest limit
    p = helpers.run_demo_on_slurm(slurm_cluster, onslurm, cfg, f"{run}/model.pt", extra=["--retries", "0"], small=short)
    out = p.stdout + p.stderr
    assert p.returncode != 0, p.log
    m = re.search(r"SLURM-job '(\d+)' failed, SLURM status is: 'TIMEOUT'", out)
    assert m, p.log
    row = wait_for(lambda: slurm_cluster.sacct([m.group(1)]).get(m.group(1)))
    assert row and row["State"] == "TIMEOUT", row
    # the hint: the job (rule and wildcards), its SLURM id and state, the profile key to raise
    hint = [line for line in out.splitlines() if "TIMEOUT" in line and "runtime" in line]
    assert hint, p.log
    assert "train" in hint[0] and "seed=0" in hint[0] and m.group(1) in hint[0], hint
    assert "set-resources" in hint[0] and "train" in hint[0] and "runtime" in hint[0] and "1 min" in hint[0], hint
    # nothing half-written is an output; the checkpoint (not an output) survives
    assert not (onslurm / run / "model.pt").exists()
    assert (onslurm / run / "state" / "last.ckpt").exists(), "killed before its first checkpoint"

    p = helpers.run_demo_on_slurm(slurm_cluster, onslurm, cfg, f"{run}/model.pt", extra=["--retries", "0"])
    assert p.returncode == 0, p.log
    log = (onslurm / "results/demo/logs/train/shapes/full/pspnet_r18/origin/ce/seed0.log").read_text()
    assert "resuming from" in log, log[-2000:]
    assert (onslurm / run / "model.pt").read_bytes() == (straight / run / "model.pt").read_bytes()
    assert (onslurm / run / "curve.csv").read_bytes() == (straight / run / "curve.csv").read_bytes()
    assert not (onslurm / run / "state" / "last.ckpt").exists()
