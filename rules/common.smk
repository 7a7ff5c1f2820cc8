# Config access, validation, wildcard constraints and path helpers.
# The only Python in the workflow besides the scripts: rules call these helpers.

import json
import os
import shlex
import sys
from pathlib import Path

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError

SRC = Path(workflow.basedir) / "src"
SCHEMA = Path(workflow.basedir) / "config" / "schema.yaml"
# class names of the built-in datasets, to check config class names before any job runs
# (segaug.data.classnames imports nothing, so the Snakemake process needs no numpy)
sys.path.insert(0, str(SRC))
from segaug.data.classnames import BUILTIN as BUILTIN_CLASSES

# Every job, local or on a cluster node, imports the library from src/ (no install needed).
# Bash strict mode is kept (a custom prefix replaces Snakemake's default one).
shell.prefix(
    "set -euo pipefail; export PYTHONPATH="
    + shlex.quote(str(SRC)).replace("{", "{{").replace("}", "}}")
    + '"${{PYTHONPATH:+:$PYTHONPATH}}"; '
)


# ------------------------------------------------------------------ validation
def _format_error(err):
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(sorted(err.schema.get("properties", {}))) or "none"
        prefix = f"{where}." if err.absolute_path else ""
        return f"unknown key '{prefix}{extra[0]}' (allowed here: {allowed})"
    return f"key '{where}': {err.message}"


def validate_config(cfg):
    """Schema check plus cross-references; one clear line per problem, naming the key."""
    schema = yaml.safe_load(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    problems = [_format_error(e) for e in errors[:1]]
    if not problems:
        for name, s in cfg["splits"].items():
            if s["dataset"] not in cfg["datasets"]:
                problems.append(
                    f"key 'splits.{name}.dataset': unknown dataset '{s['dataset']}'"
                )
            for part in ("train", "val"):
                kind, _, ref = s[part].partition(":")
                if kind == "list" and ref not in cfg.get("lists", {}):
                    problems.append(f"key 'splits.{name}.{part}': unknown list '{ref}'")
        t1 = cfg["table1"]
        for key, section in (("models", "models"), ("splits", "splits")):
            for v in t1[key]:
                if v not in cfg[section]:
                    problems.append(f"key 'table1.{key}': unknown {key[:-1]} '{v}'")
        if t1["loss"] not in cfg["losses"]:
            problems.append(f"key 'table1.loss': unknown loss '{t1['loss']}'")
        for name in cfg["pool"].get("classes") or []:
            for ds, d in cfg["datasets"].items():
                known = BUILTIN_CLASSES.get(d["kind"])
                if known and name not in known:
                    problems.append(
                        f"key 'pool.classes': unknown class '{name}' for dataset '{ds}' "
                        f"(known: {', '.join(known)})"
                    )
        method = t1["d_final"].removeprefix("paste-")
        if method not in cfg["paste"]:
            problems.append(
                f"key 'table1.d_final': no paste method '{method}' in 'paste'"
            )
    if problems:
        raise WorkflowError(
            f"invalid config ({', '.join(map(str, workflow.overwrite_configfiles or ['config']))}): "
            + "; ".join(problems)
        )


validate_config(config)

OUT = config["outdir"].rstrip("/")
RAW = config.get("raw_dir", "resources/raw").rstrip("/")
SEEDS = [int(s) for s in config["seeds"]]
HF_HOME = config.get("hf_home", "resources/huggingface").rstrip("/")
PASTE_METHODS = sorted(config["paste"])
TRAINSETS = ["origin"] + [f"paste-{m}" for m in PASTE_METHODS]


def _alt(values):
    return "|".join(sorted(str(v) for v in values))


wildcard_constraints:
    dataset=_alt(config["datasets"]),
    split=_alt(config["splits"]),
    method=_alt(PASTE_METHODS),
    model=_alt(config["models"]),
    trainset=_alt(TRAINSETS),
    loss=_alt(config["losses"]),
    seed=r"\d+",
    listname=_alt(config.get("lists", {})) or "(?!)",


# ------------------------------------------------------------------ paths
def script(name):
    return str(Path(workflow.basedir) / "scripts" / name)


def jarg(obj):
    """A dict as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def dataset_cfg(dataset):
    return config["datasets"][dataset]


def dataset_dir(dataset):
    """The canonical dataset directory: prepared by the workflow, or used in place."""
    d = dataset_cfg(dataset)
    if d["kind"] == "canonical":
        return d["path"]
    return f"{OUT}/{dataset}/dataset"


def split_dataset(split):
    return config["splits"][split]["dataset"]


def check_split(wildcards):
    if split_dataset(wildcards.split) != wildcards.dataset:
        raise WorkflowError(
            f"split '{wildcards.split}' belongs to dataset "
            f"'{split_dataset(wildcards.split)}', not '{wildcards.dataset}'"
        )


def split_prefix(split):
    return f"{OUT}/{split_dataset(split)}/{split}"


def list_file(name):
    lst = config["lists"][name]
    return lst.get("path") or f"{RAW}/lists/{name}.txt"


def split_source(wildcards, part):
    """File an id list comes from: a set shipped with the dataset or a downloaded list."""
    kind, _, ref = config["splits"][wildcards.split][part].partition(":")
    if kind == "set":
        return f"{dataset_dir(wildcards.dataset)}/sets/{ref}.txt"
    return list_file(ref)


def split_inputs(wildcards):
    check_split(wildcards)
    inputs = {"dataset": dataset_dir(wildcards.dataset)}
    for part in ("train", "val"):
        kind, _, ref = config["splits"][wildcards.split][part].partition(":")
        if kind == "list":
            inputs[f"{part}_list"] = list_file(ref)
    return inputs


def voc_tar(dataset):
    return f"{RAW}/{dataset}.tar"


def prepare_inputs(wildcards):
    d = dataset_cfg(wildcards.dataset)
    if d["kind"] == "voc" and not d.get("path"):
        return {"tar": voc_tar(wildcards.dataset)}
    return {}


def prepare_args(wildcards, input):
    d = dataset_cfg(wildcards.dataset)
    if d["kind"] == "voc":
        src = (
            f"--voc-root {shlex.quote(d['path'])}"
            if d.get("path")
            else f"--voc-tar {input.tar}"
        )
        return f"--kind voc --year {d['year']} {src}"
    if d["kind"] == "demo":
        keys = ("num_train", "num_val", "width", "height", "seed")
        return "--kind demo " + " ".join(
            f"--{k.replace('_', '-')} {d[k]}" for k in keys if k in d
        )
    raise WorkflowError(
        f"dataset '{wildcards.dataset}': kind {d['kind']} is used in place"
    )


def pool_args():
    p = config["pool"]
    args = [
        f"--min-area {p.get('min_area', 100)}",
        f"--max-fraction {p.get('max_fraction', 0.05)}",
    ]
    if p.get("classes"):
        args.append("--classes " + " ".join(shlex.quote(c) for c in p["classes"]))
    if p.get("drop_border", True):
        args.append("--drop-border")
    return " ".join(args)


def paste_args(wildcards):
    p = config["paste"][wildcards.method]
    flags = {
        "copies": "--copies",
        "objects_per_image": "--objects-per-image",
        "scale_range": "--scale-range",
        "flip_prob": "--flip-prob",
        "blend": "--blend",
        "feather_px": "--feather-px",
    }
    out = []
    for key, flag in flags.items():
        if key in p:
            v = p[key]
            out.append(
                f"{flag} " + (" ".join(map(str, v)) if isinstance(v, list) else str(v))
            )
    return " ".join(out)


def paste_dir(dataset, split, method, seed):
    return f"{OUT}/{dataset}/{split}/paste/{method}/seed{seed}"


def train_inputs(wildcards):
    check_split(wildcards)
    prefix = f"{OUT}/{wildcards.dataset}/{wildcards.split}"
    inputs = {
        "dataset": dataset_dir(wildcards.dataset),
        "train_list": f"{prefix}/splits/train.txt",
        "val_list": f"{prefix}/splits/val.txt",
    }
    if config["models"][wildcards.model].get("encoder_weights"):
        inputs["weights"] = weights_marker(wildcards.model)
    if wildcards.trainset != "origin":
        method = wildcards.trainset.removeprefix("paste-")
        inputs["extra"] = paste_dir(
            wildcards.dataset, wildcards.split, method, wildcards.seed
        )
    return inputs


def extra_sets(wildcards, input):
    if "extra" in input.keys():
        return f"--extra-set {input.extra}:{input.extra}/sets/all.txt"
    return ""


def weights_marker(model):
    return f"{HF_HOME}/.segaug/{model}.ready"


def prefetch_targets():
    """Everything a run downloads: datasets, id lists, pretrained weights (for `prefetch`)."""
    out = []
    for name, d in config["datasets"].items():
        if d["kind"] == "voc" and not d.get("path"):
            out.append(voc_tar(name))
    out += [
        list_file(n)
        for n in config.get("lists", {})
        if not config["lists"][n].get("path")
    ]
    out += [
        weights_marker(m)
        for m, c in config["models"].items()
        if c.get("encoder_weights")
    ]
    return out


def run_info(wildcards):
    return {
        "dataset": wildcards.dataset,
        "split": wildcards.split,
        "model": wildcards.model,
        "trainset": wildcards.trainset,
        "loss": wildcards.loss,
        "seed": int(wildcards.seed),
    }


def run_dir(kind, dataset, split, model, trainset, loss, seed):
    return f"{OUT}/{dataset}/{split}/{kind}/{model}/{trainset}/{loss}/seed{seed}"


def table1_runs(seeds=None):
    """(dataset, split, model, trainset, loss, seed) of every run Table 1 needs."""
    t1 = config["table1"]
    runs = []
    for split in t1["splits"]:
        for model in t1["models"]:
            for trainset in ("origin", t1["d_final"]):
                for seed in seeds if seeds is not None else SEEDS:
                    runs.append(
                        (split_dataset(split), split, model, trainset, t1["loss"], seed)
                    )
    return runs


def metrics_files(seeds=None):
    return [
        os.path.join(run_dir("eval", *r), "metrics.json") for r in table1_runs(seeds)
    ]
