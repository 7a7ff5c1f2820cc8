"""What a cluster user needs to read when SLURM ended a job: which job, why, what to raise.

Snakemake's SLURM executor reports a job SLURM ended (time limit, memory) as one line,
``SLURM-job '12' failed, SLURM status is: 'TIMEOUT'``, far from the job it belongs to. Read from
Snakemake's log, :func:`slurm_kill_hints` gives one line per such job: the rule and wildcards,
the SLURM job id and state, and the profile key to raise. Standard library only (the Snakemake
process calls it at the end of a run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# SLURM states that mean "the request was too small", and the resource to raise
RAISE = {
    "TIMEOUT": ("runtime", "min", "at its time limit"),
    "DEADLINE": ("runtime", "min", "at its deadline"),
    "OUT_OF_MEMORY": ("mem_mb", "MB", "out of memory"),
}

_JOB = re.compile(r"^(?:local)?rule (\w+):$")
_SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")
_FAILED = re.compile(r"SLURM-job '(\d+)' failed(?:[^']*)?, SLURM status is: '(\w+)'")


@dataclass(frozen=True)
class KilledJob:
    rule: str
    wildcards: str
    slurm_id: str
    state: str
    resources: dict

    def hint(self, profile: str = "profiles/slurm/config.yaml") -> str:
        key, unit, why = RAISE[self.state]
        now = self.resources.get(key)
        was = f" after {key}={now} {unit}" if now is not None else ""
        return (
            f"segaug: SLURM killed rule {self.rule} ({self.wildcards or 'no wildcards'}), SLURM job "
            f"{self.slurm_id}, {why} ({self.state}){was}: raise set-resources: {self.rule}: {key}: in "
            f"{profile}; run again (a training resumes from its last checkpoint)"
        )


def killed_jobs(log_text: str) -> list[KilledJob]:
    """Jobs SLURM ended for a too small request (:data:`RAISE`), in the order they failed."""
    jobs: dict[str, dict] = {}  # snakemake job id -> rule, wildcards, resources
    current = None
    for line in log_text.splitlines():
        m = _JOB.match(line.strip()) if not line.startswith(" ") else None
        if m:
            current = {"rule": m.group(1), "wildcards": "", "resources": {}}
            continue
        if current is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key == "jobid":
                jobs[value.strip()] = current
            elif key == "wildcards":
                current["wildcards"] = value.strip()
            elif key == "resources":
                current["resources"] = _resources(value)
            continue
        current = None
    slurm_to_job = {s: j for j, s in _SUBMITTED.findall(log_text)}
    out, seen = [], set()
    for slurm_id, state in _FAILED.findall(log_text):
        if state not in RAISE or slurm_id in seen:
            continue
        seen.add(slurm_id)
        job = jobs.get(slurm_to_job.get(slurm_id, ""), {"rule": "?", "wildcards": "", "resources": {}})
        out.append(KilledJob(job["rule"], job["wildcards"], slurm_id, state, job["resources"]))
    return out


def slurm_kill_hints(log_text: str, profile: str = "profiles/slurm/config.yaml") -> list[str]:
    return [j.hint(profile) for j in killed_jobs(log_text)]


def _resources(text: str) -> dict:
    """``mem_mb=2000, runtime=1, slurm_partition=gpu`` -> dict (numbers as int)."""
    out = {}
    for part in re.split(r",\s*(?=\w+=)", text):
        key, sep, value = part.partition("=")
        if sep:
            value = value.strip()
            out[key.strip()] = int(value) if value.isdigit() else value
    return out
