# segaug: augmentation for semantic segmentation, from raw data to the paper's tables.
#
#   snakemake --cores all                                  # Table 1 of the paper (config/config.yaml)
#   snakemake --cores 2 --configfile config/demo.yaml      # the laptop demo, results/demo/
#   snakemake --profile profiles/slurm results/tables/table1.csv
#
# Rules say WHAT exists and from what; scripts/ are the glue; src/segaug/ holds the algorithms.

import os

from snakemake.utils import min_version

min_version("9.0")


# The paper config is the default; `--configfile config/demo.yaml` replaces it (not merged).
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/pool.smk"
include: "rules/paste.smk"
include: "rules/generate.smk"
include: "rules/train.smk"
include: "rules/report.smk"


localrules:
    all,
    ablations,
    seed_file,
    download_dataset,
    download_list,
    prefetch_weights,
    prefetch_hub,
    prefetch_inception,
    prefetch,
    table1,
    seed_metrics,
    ablation_table,
    synthetic_sets_table,
    thesis_table,
    table2,
    figure5,
    sample_grid,
    class_histogram,


rule all:
    default_target: True
    input:
        f"{OUT}/tables/table1.csv",
        f"{OUT}/tables/table1.md",
        synthetic_sets_tables(),
        thesis_targets(),
        report_targets(),


rule prefetch:
    """Every download a run needs, on the submit host (compute nodes may have no internet)."""
    input:
        prefetch_targets(),


# Every rule exists now: with SEGAUG_VENVS set, each job runs in the venv of its rule's env
# (rules/common.smk, "software environments").
use_software_envs()


# A job SLURM killed for its time limit or memory: one line naming it and the profile key.
onsuccess:
    report_slurm_kills(log)


onerror:
    report_slurm_kills(log)
