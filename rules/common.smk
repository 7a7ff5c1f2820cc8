# The config check, the config's lists (datasets, methods, models, ...), wildcard constraints and
# the path and lookup helpers the rules of every family share; family-specific input functions
# live in rules/helpers/{family}.smk.

import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake_interface_executor_plugins.settings import DeploymentMethod

SRC = Path(workflow.basedir) / "src"
SCHEMA = Path(workflow.basedir) / "config" / "schema.yaml"
# The datasets' class tables are read when the workflow starts, so config keys naming classes
# are checked before any job runs (these modules use the standard library only: the Snakemake
# process needs no numpy).
sys.path.insert(0, str(SRC))
from segaug.data.kinds import dataset_fingerprint, get_kind
from segaug.paste.methods import get_method
from segaug.workflow import plan
from segaug.workflow.config import expand_variants, validate_config


def _braced(text):
    """Text for shell.prefix, which formats it like a rule's command."""
    return text.replace("{", "{{").replace("}", "}}")


# Every job, local or on a cluster node, imports the library from src/ (no install needed) and
# finds the scripts under $SEGAUG_ROOT, the checkout's path. That path lives here only, in the
# prefix, which Snakemake does not record: params, commands and inputs hold none, so a moved
# checkout or results copied elsewhere with .snakemake/metadata plan nothing again.
# Bash strict mode is kept (a custom prefix replaces Snakemake's default one).
shell.prefix(
    _braced(
        "set -euo pipefail; "
        f"export SEGAUG_ROOT={shlex.quote(workflow.basedir)}; "
        f"export PYTHONPATH={shlex.quote(str(SRC))}"
        '"${PYTHONPATH:+:$PYTHONPATH}"; '
    )
)


# ------------------------------------------------------------------ software environments
# Each job that runs code names its env (`conda: "../envs/NAME.yaml"`, or `train_env`, which
# picks envs/train.yaml or envs/mmseg.yaml by the model's backend). Three ways to provide them:
#   --sdm conda (profiles/slurm): Snakemake builds each env with conda or mamba;
#   SEGAUG_VENVS=DIR: each job runs in DIR/NAME, a venv built from envs/NAME.yaml's pip pins by
#     scripts/build_venvs.py (`make venvs`): hosts without conda, and CI's check of the envs;
#   neither: jobs run in the environment snakemake itself runs in (the laptop's one venv).
# The choice changes nothing Snakemake records: switching does not make jobs run again.
VENVS = os.environ.get("SEGAUG_VENVS") or None
VENV_SHELL = "bin/segaug-shell"  # written by scripts/build_venvs.py into each venv


def env_name(spec):
    """ "../envs/train.yaml" -> "train"."""
    return Path(spec).stem


def rule_envs(r):
    """The env names a rule may run in (both backends' envs for `train_env`)."""
    env = r.conda_env
    if env is None:
        return []
    if callable(env):
        return sorted(
            {env_name(env(SimpleNamespace(model=m))) for m in config["models"]}
        )
    return [env_name(env)]


def _venv_shell(env):
    """The shell a job of a rule with conda env ``env`` (a path or a function) runs in."""

    def shell_of(wildcards):
        spec = env(wildcards) if callable(env) else env
        return str(Path(VENVS, env_name(spec), VENV_SHELL))

    return shell_of


def _conda_available():
    return bool(
        shutil.which("conda")
        or shutil.which("mamba")
        or workflow.deployment_settings.conda_base_path
    )


def _without_conda(reason):
    settings = workflow.deployment_settings
    settings.deployment_method = frozenset(
        m for m in settings.deployment_method if m != DeploymentMethod.CONDA
    )
    logger.info(reason)


def use_software_envs():
    """Called at the end of the Snakefile, once all rules exist. With SEGAUG_VENVS, run each
    job in the venv of its rule's env (the job's shell is that venv's segaug-shell); without
    it, check that --sdm conda has a conda to call."""
    uses_conda = (
        DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    )
    if VENVS:
        if not os.path.isabs(VENVS):
            raise WorkflowError(
                f"SEGAUG_VENVS={VENVS}: give an absolute path (jobs run in other directories)"
            )
        envs = {e for r in workflow.rules for e in rule_envs(r)}
        problems = []
        for env in sorted(envs):
            venv, spec = Path(VENVS, env), Path(workflow.basedir, "envs", f"{env}.yaml")
            marker = venv / ".segaug-env"
            if not (venv / VENV_SHELL).is_file() or not marker.is_file():
                problems.append(f"no venv {venv}")
            elif marker.read_text().strip() != sha256_file(spec):
                problems.append(f"{venv} is older than envs/{env}.yaml")
        if problems:
            raise WorkflowError(
                f"SEGAUG_VENVS={VENVS}: {'; '.join(problems)}; build them with "
                f"`python {workflow.basedir}/scripts/build_venvs.py --dest {VENVS}` "
                "(make venvs VENVS=...)"
            )
        for r in workflow.rules:
            if r.conda_env is not None:
                r.resources["shell_exec"] = _venv_shell(r.conda_env)
        if uses_conda:
            _without_conda(
                f"SEGAUG_VENVS={VENVS}: jobs run in its venvs, not in conda envs"
            )
    elif uses_conda and not _conda_available():
        fix = (
            "install conda or mamba (Miniforge), or build the envs as venvs "
            "(make venvs VENVS=DIR) and set SEGAUG_VENVS=DIR, "
            "or run in this environment with --sdm env-modules"
        )
        if workflow.output_settings.dryrun:
            _without_conda(
                f"no conda on this host (a dry run only); a real run needs: {fix}"
            )
        else:
            raise WorkflowError(
                f"--sdm conda (software-deployment-method in the profile) but no conda or mamba on PATH: {fix}"
            )


def report_slurm_kills(log):
    """onsuccess / onerror: one line per job SLURM ended for a too small request (TIMEOUT,
    OUT_OF_MEMORY): the rule and wildcards, the SLURM job and state, the profile key to raise.
    """
    from segaug.workflow.cluster import slurm_kill_hints

    text = ""
    for path in (
        [log] if isinstance(log, (str, Path)) else log or []
    ):  # Snakemake 9: a list
        try:
            text += Path(path).read_text(errors="replace")
        except OSError:
            pass
    for line in slurm_kill_hints(text):
        logger.error(line)


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------ validation
def check_config(cfg):
    """The config checked (segaug.workflow.config); returns the datasets' class tables."""
    tables, problems = validate_config(cfg, SCHEMA)
    if problems:
        raise WorkflowError(
            f"invalid config ({', '.join(map(str, workflow.overwrite_configfiles or ['config']))}): "
            + "; ".join(problems)
        )
    return tables


# dataset -> {names, palette, ignore_index, source}: class keys were checked against them
CLASS_TABLES = check_config(config)

OUT = config["outdir"].rstrip("/")
RAW = config.get("raw_dir", "resources/raw").rstrip("/")
SEEDS = [int(s) for s in config["seeds"]]
HF_HOME = config.get("hf_home", "resources/huggingface").rstrip("/")
CONFIG_PASTE_METHODS = sorted(config["paste"])  # the methods this config pastes with
GEN = config.get("generative") or {}
VARIANTS = expand_variants(config)
FIGURES = plan.figures_cfg(
    config
)  # model, split and samples of Table 2 / Figure 5 / the grid
TRAINSETS = (
    ["origin"]
    + [f"paste-{m}" for m in CONFIG_PASTE_METHODS]
    + [f"gen-{v}" for v in VARIANTS]
)
PRIORS = ("lineart", "canny", "sketch")
TINY_KINDS = (
    "blip2",
    "clip",
    "annotators",
    "sdxl-adapter",
    "sdxl-controlnet",
    "sdxl-inpaint",
    "qwen-vl",
    "clipseg",
    "sam",
)


def _alt(values):
    # only dots need escaping in our names; Snakemake's wildcard regexes reject "\-"
    return "|".join(sorted(str(v).replace(".", r"\.") for v in values))


wildcard_constraints:
    dataset=_alt(config["datasets"]),
    split=_alt(config["splits"]),
    method=_alt(CONFIG_PASTE_METHODS),
    model=_alt(config["models"]),
    trainset=_alt(TRAINSETS),
    loss=_alt(config["losses"]),
    seed=r"\d+",
    listname=_alt(config.get("lists", {})) or "(?!)",
    variant=_alt(VARIANTS) or "(?!)",
    plan=r"balance-(auto|\d+)|uniform-\d+",
    prior=_alt(PRIORS),
    shard=r"\d+",
    tinykind=_alt(TINY_KINDS),
    repo=r"[A-Za-z0-9_.-]+--[A-Za-z0-9_.-]+",


# ------------------------------------------------------------------ paths
def script(name):
    """A script as a job's command names it: under $SEGAUG_ROOT (set by the shell prefix)."""
    return f'"$SEGAUG_ROOT"/scripts/{name}'


def seed_file(wildcards):
    """The seed file of a job's seed (rule seed_file)."""
    return f"{OUT}/seeds/{wildcards.seed}.txt"


def jarg(obj):
    """A dict as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def dataset_cfg(dataset):
    return config["datasets"][dataset]


def dataset_dir(dataset):
    """The canonical dataset directory: prepared by the workflow, or used in place."""
    d = dataset_cfg(dataset)
    if get_kind(d["kind"]).in_place:
        return d["path"]
    return f"{OUT}/{dataset}/dataset"


def split_dataset(split):
    return plan.split_dataset(config, split)


def split_list(dataset, split, part):
    """The id list of a split's ``part`` (train or val), as make_split writes it; also a
    pattern, with "{dataset}" and "{split}" as the wildcards."""
    return f"{OUT}/{dataset}/{split}/splits/{part}.txt"


def require_split_of_dataset(wildcards):
    """A path's {split} must belong to its {dataset} (one error line naming both)."""
    if split_dataset(wildcards.split) != wildcards.dataset:
        raise WorkflowError(
            f"split '{wildcards.split}' belongs to dataset "
            f"'{split_dataset(wildcards.split)}', not '{wildcards.dataset}'"
        )


def split_inputs_train(wildcards):
    """The dataset and the split's train list (what the generative rules read)."""
    require_split_of_dataset(wildcards)
    return {
        "dataset": dataset_dir(wildcards.dataset),
        "train_list": split_list(wildcards.dataset, wildcards.split, "train"),
    }


def paste_dir(dataset, split, method, seed):
    return f"{OUT}/{dataset}/{split}/paste/{method}/seed{seed}"


def pretrained(model):
    """Whether a model starts from pretrained weights (smp encoder or Mask2Former backbone)."""
    c = config["models"][model]
    return bool(c.get("encoder_weights") or c.get("backbone_weights"))


def backend(model):
    return config["models"][model].get("backend", "smp")


def used_models():
    """Models some table or figure trains (mmseg-backend weights are prefetched only for these:
    their prefetch job needs envs/mmseg.yaml)."""
    used = set(config["table1"]["models"])
    for section in ("ablations", "figures", "thesis"):
        if isinstance(config.get(section), dict) and config[section].get("model"):
            used.add(config[section]["model"])
    return used


def train_env(wildcards):
    """The conda env of a model's train/evaluate/prefetch jobs: by its backend."""
    if backend(wildcards.model) == "mmseg":
        return "../envs/mmseg.yaml"
    return "../envs/train.yaml"


def weights_marker(model):
    return f"{HF_HOME}/.segaug/{model}.ready"


def gen_prefix(dataset, split):
    return f"{OUT}/{dataset}/{split}/gen"


def gen_dir(dataset, split, variant, seed):
    return f"{gen_prefix(dataset, split)}/{variant}/seed{seed}"


def gen_set(dataset, split, variant, seed):
    """The synthetic set (D_gen) of one variant and seed: a canonical dataset."""
    return f"{gen_dir(dataset, split, variant, seed)}/set"


def hub_marker(ref):
    owner, name = ref.split("/", 1)
    slug = f"{owner}--{name}"
    return f"{HF_HOME}/.segaug/hub/{slug}.ready"


def model_input(ref):
    """What a job that loads model ``ref`` waits for: the tiny model the workflow builds
    ({OUT}/tiny/KIND), the prefetch marker of a hub id, or nothing (a local directory).
    """
    tiny = f"{OUT}/tiny/"
    if ref.startswith(tiny):
        return tiny + ref[len(tiny) :].split("/")[0]
    if re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", ref) and not os.path.isdir(ref):
        return hub_marker(ref)
    return None


def model_inputs(*refs):
    return sorted({m for m in map(model_input, filter(None, refs)) if m})

# ------------------------------------------------------------------ figures and provenance
