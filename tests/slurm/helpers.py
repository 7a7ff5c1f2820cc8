"""Helpers for running Snakemake against the local one-node SLURM cluster (cluster.sh).

No package here (tests/slurm has no __init__.py); load this module by path:

    import importlib.util, pathlib
    spec = importlib.util.spec_from_file_location(
        "segaug_slurm_helpers", pathlib.Path("tests/slurm/helpers.py"))
    helpers = importlib.util.module_from_spec(spec); spec.loader.exec_module(helpers)

    with helpers.LocalSlurmCluster(tmpdir) as cl:            # accounting on
        subprocess.run([helpers.snakemake_bin(), *targets, "--profile", "profiles/slurm",
                        *helpers.slurm_cli_args()], env=cl.env)

See docs/cluster.md for why each flag is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLUSTER_SH = HERE / "cluster.sh"
TOY_SNAKEFILE = HERE / "toy" / "Snakefile"
ACCOUNT = "segaug"  # the account cluster.sh creates (and the profile should name)
REPO = HERE.parents[1]


def snakemake_bin() -> str:
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else (shutil.which("snakemake") or "snakemake")


def slurm_cli_args(
    status_command: str | None = None,
    *,
    jobs: int = 4,
    init_seconds: int = 2,
    logdir: str | os.PathLike | None = None,
) -> list[str]:
    """Snakemake flags that make snakemake-executor-plugin-slurm 2.8 usable on the local cluster.

    - ``--executor slurm --jobs N``: N jobs in the queue at once (the node has 2 CPUs; more
      just wait as PENDING).
    - ``--slurm-init-seconds-before-status-checks``: the plugin's default is 40 s before the
      first status query (and again after every finished job); 1-5 s keeps a toy run under a
      minute. Between checks that find nothing finished the plugin adds 10 s (capped at
      180 s), so a DAG level costs ~init+10 s however short its jobs are.
    - ``--slurm-keep-successful-logs``: otherwise the per-job SLURM logs of successful jobs
      are deleted and cannot be checked.
    - ``--slurm-status-command squeue``: REQUIRED on a cluster without accounting. The plugin
      picks ``sacct`` whenever the binary exists; without slurmdbd every ``sacct`` call fails
      and the plugin then waits forever on finished jobs. (It only keeps ``squeue`` when
      MinJobAge >= 3 x init seconds; cluster.sh sets MinJobAge=300.)
    - ``--slurm-logdir``: absolute, else logs go to .snakemake/slurm_logs of the workdir.

    Not here on purpose: ``--default-resources``. Given on the command line it REPLACES the
    profile's whole default-resources mapping (mem_mb, runtime, ... are lost); see
    :func:`slurm_default_resources` for runs without a profile.
    """
    args = [
        "--executor",
        "slurm",
        "--jobs",
        str(jobs),
        "--slurm-init-seconds-before-status-checks",
        str(init_seconds),
        "--slurm-keep-successful-logs",
    ]
    if status_command is not None:
        if status_command not in ("sacct", "squeue"):
            raise ValueError(f"status_command must be 'sacct' or 'squeue', not {status_command!r}")
        args += ["--slurm-status-command", status_command]
    if logdir is not None:
        args += ["--slurm-logdir", str(Path(logdir).resolve())]
    return args


def slurm_default_resources(account: str = ACCOUNT, partition: str = "cpu", **extra) -> list[str]:
    """``--default-resources`` for runs WITHOUT a profile (see slurm_cli_args for why).

    ``slurm_account`` must be given: the plugin's account guessing runs
    ``sacct ... | tail -1`` without a shell and never finds one. With accounting on, the
    plugin checks the account against ``sacctmgr list user $USER`` and refuses unknown ones.
    Put this option AFTER the targets (it takes any number of values).
    """
    pairs = {"slurm_account": account, "slurm_partition": partition, **extra}
    return ["--default-resources", *(f"{k}={v}" for k, v in pairs.items())]


def _die_with_parent() -> None:  # preexec_fn: SIGKILL this child when its parent dies
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def run_snakemake(args, env, *, timeout: float = 600, cwd=None) -> subprocess.CompletedProcess:
    """``snakemake *args`` with ``env`` (a LocalSlurmCluster's); adds ``wall_seconds``.

    Killed with SIGKILL on timeout and when the calling process dies: snakemake answers
    SIGTERM with "Will exit after finishing currently running jobs" and, once its cluster
    is gone, waits on its jobs forever. Raises subprocess.TimeoutExpired on timeout.
    """
    cmd = [snakemake_bin(), *map(str, args)]
    t0 = time.monotonic()
    p = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, preexec_fn=_die_with_parent
    )
    p.wall_seconds = time.monotonic() - t0
    return p


def slurm_tools_installed() -> bool:
    return all(shutil.which(b) for b in ("sbatch", "slurmctld", "slurmd", "munged"))


def install() -> None:
    """``cluster.sh install`` (apt-get; needs root); a no-op when all is installed."""
    subprocess.run(["bash", str(CLUSTER_SH), "install"], check=True, timeout=900)


def clean_env(base: dict | None = None) -> dict:
    """A copy of the environment without another cluster's SLURM_*/SBATCH_*/SRUN_* variables."""
    env = dict(os.environ if base is None else base)
    for k in list(env):
        if k.startswith(("SLURM_", "SBATCH_", "SRUN_")):
            del env[k]
    return env


class LocalSlurmCluster:
    """Start/stop tests/slurm/cluster.sh in ``directory``; ``env`` is the environment for
    commands that talk to it (SLURM_CONF, PATH with the srun wrapper first)."""

    def __init__(self, directory, *, accounting: bool = True, gpus: int = 1, extra_args: list[str] | None = None):
        self.dir = Path(directory)
        self.accounting = accounting
        self.gpus = gpus
        self.extra_args = list(extra_args or [])
        self.env: dict | None = None
        self.start_seconds: float | None = None

    # -- lifecycle
    def start(self) -> LocalSlurmCluster:
        cmd = ["bash", str(CLUSTER_SH), "start", str(self.dir), "--gpus", str(self.gpus), *self.extra_args]
        if not self.accounting:
            cmd.append("--no-accounting")
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=clean_env())
        self.start_seconds = time.monotonic() - t0
        if p.returncode != 0:
            self.stop()  # whatever did come up
            raise RuntimeError(
                f"cluster.sh start failed ({p.returncode}):\n{p.stdout}\n{p.stderr}\n" + self.logs_tail()
            )
        self.env = self._read_env()
        return self

    def stop(self) -> None:
        if (self.dir / "run").is_dir():
            subprocess.run(
                ["bash", str(CLUSTER_SH), "stop", str(self.dir)],
                capture_output=True,
                text=True,
                timeout=180,
                env=clean_env(),
            )

    def running(self) -> bool:
        p = subprocess.run(
            ["bash", str(CLUSTER_SH), "status", str(self.dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
        return p.returncode == 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- use
    def _read_env(self) -> dict:
        env = clean_env()
        for line in (self.dir / "env.sh").read_text().splitlines():
            if not line.startswith("export "):
                continue
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value.replace("$PATH", env.get("PATH", ""))
        return env

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a SLURM client command (sacct, squeue, scontrol, ...) against this cluster."""
        p = subprocess.run(list(cmd), capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stdout}{p.stderr}")
        return p

    def sacct(self, job_ids, fields=("JobIDRaw", "State", "Partition", "AllocTRES", "Account")) -> dict:
        """{job id: {field: value}} for the main records (-X) of ``job_ids``."""
        p = self.run("sacct", "-X", "-n", "-P", "-j", ",".join(map(str, job_ids)), "-o", ",".join(fields))
        rows = {}
        for line in p.stdout.splitlines():
            vals = line.split("|")
            if len(vals) == len(fields):
                rows[vals[0]] = dict(zip(fields, vals))
        return rows

    def scontrol_job(self, job_id) -> dict:
        """``scontrol show job`` as a dict (works without accounting for MinJobAge=300 s)."""
        p = self.run("scontrol", "-o", "show", "job", str(job_id))
        out = {}
        for tok in p.stdout.split():
            k, sep, v = tok.partition("=")
            if sep:
                out[k] = v
        return out

    def logs_tail(self, n: int = 30) -> str:
        parts = []
        for f in sorted((self.dir / "log").glob("*.log")):
            lines = f.read_text(errors="replace").splitlines()[-n:]
            parts.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(parts)


# The node is small (2 CPUs): shrink the profile's per-rule requests, keep its partitions and
# GPUs. --set-resources given here replaces the profile's mapping, so it is complete.
def small_resources(override: dict | None = None) -> list[str]:
    """--set-resources / --set-threads for the local node; ``override``: {"train:runtime": 1}."""
    res = {
        **{
            f"{r}:{k}": v
            for r in ("prepare_dataset", "make_split", "pool", "paste")
            for k, v in (("mem_mb", 1000), ("cpus_per_task", 1), ("runtime", 20))
        },
        **{
            f"{r}:{k}": v
            for r in ("train", "evaluate")
            for k, v in (
                ("mem_mb", 2000),
                ("cpus_per_task", 1),
                ("runtime", 30),
                ("slurm_partition", "gpu"),
                ("gpu", 1),
            )
        },
        **(override or {}),
    }
    return [
        "--set-resources",
        *(f"{k}={v}" for k, v in res.items()),
        "--set-threads",
        "train=1",
        "evaluate=1",
        "prepare_dataset=1",
        "pool=1",
        "paste=1",
        "--sdm",
        "env-modules",  # the profile's conda needs conda channels, unreachable here
    ]


SMALL = small_resources()


def run_demo_on_slurm(cluster, workdir: Path, cfg: Path, *targets, status_command=None, extra=(), small=SMALL):
    env = {
        **cluster.env,
        "SNAKEMAKE_SLURM_ACCOUNT": ACCOUNT,
        "PATH": f"{Path(snakemake_bin()).parent}:{cluster.env['PATH']}",
    }
    args = [
        *targets,
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(cfg),
        "--profile",
        str(REPO / "profiles" / "slurm"),
        *slurm_cli_args(status_command, logdir=workdir / "slurm_logs"),
        *small,
        *extra,
    ]
    p = run_snakemake(args, env, timeout=600)
    p.log = f"$ {' '.join(p.args)}\n{p.stdout[-3000:]}\n{p.stderr[-8000:]}"
    print(f"demo on SLURM [{status_command or 'sacct'}]: {p.wall_seconds:.1f}s rc={p.returncode}")
    return p
