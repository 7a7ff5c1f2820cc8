"""The line a cluster user reads when SLURM ended a job for a too small request."""

from segaug.workflow.cluster import killed_jobs, slurm_kill_hints

# as Snakemake 9 with snakemake-executor-plugin-slurm 2.8 writes its log (shortened)
LOG = """\
[Fri Dec  4 14:55:51 2026]
rule train:
    input: results/demo/shapes/dataset, results/demo/seeds/0.txt
    output: results/demo/shapes/full/train/pspnet_r18/origin/ce/seed0/model.pt
    log: results/demo/logs/train/shapes/full/pspnet_r18/origin/ce/seed0.log
    jobid: 3
    reason: Missing output files: results/demo/shapes/full/train/pspnet_r18/origin/ce/seed0/model.pt
    wildcards: dataset=shapes, split=full, model=pspnet_r18, trainset=origin, loss=ce, seed=0
    threads: 1
    resources: mem_mb=2000, mem_mib=1908, disk_mb=1000, tmpdir=<TBD>, slurm_account=segaug, slurm_partition=gpu, runtime=1, gpu=1, cpus_per_task=1
Job 3 has been submitted with SLURM jobid 7 (log: /x/slurm_logs/rule_train/7.log).
[Fri Dec  4 14:55:52 2026]
localrule table1:
    jobid: 4
    resources: tmpdir=/tmp
[Fri Dec  4 14:57:20 2026]
Error in rule train:
    message: SLURM-job '7' failed, SLURM status is: 'TIMEOUT'. Reason: Step 0: TimeLimit.
    jobid: 3
SLURM-job '7' failed, SLURM status is: 'TIMEOUT'. Reason: Step 0: TimeLimit.
SLURM-job '9' failed, SLURM status is: 'FAILED'. Reason: Step 0: NonZeroExitCode.
"""


def test_a_timeout_names_the_job_its_state_and_the_key_to_raise():
    jobs = killed_jobs(LOG)
    assert [(j.rule, j.slurm_id, j.state, j.resources["runtime"]) for j in jobs] == [("train", "7", "TIMEOUT", 1)]
    (hint,) = slurm_kill_hints(LOG)
    assert hint.startswith("segaug: SLURM killed rule train (dataset=shapes, split=full, model=pspnet_r18,")
    assert "seed=0), SLURM job 7, at its time limit (TIMEOUT) after runtime=1 min" in hint
    assert "raise set-resources: train: runtime: in profiles/slurm/config.yaml" in hint


def test_out_of_memory_names_mem_mb_and_other_failures_give_no_hint():
    log = LOG.replace("'TIMEOUT'", "'OUT_OF_MEMORY'")
    (hint,) = slurm_kill_hints(log)
    assert "out of memory (OUT_OF_MEMORY) after mem_mb=2000 MB: raise set-resources: train: mem_mb:" in hint
    assert slurm_kill_hints(LOG.replace("'TIMEOUT'", "'FAILED'")) == []
    assert slurm_kill_hints("") == []
