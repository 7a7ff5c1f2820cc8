# Config access, validation, wildcard constraints and path helpers.
# The only Python in the workflow besides the scripts: rules call these helpers.

import json
import os
import re
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
        problems += trainset_problems(cfg, "table1.d_final", [t1["d_final"]])
        problems += generative_problems(cfg)
        problems += context_problems(cfg)
    if problems:
        raise WorkflowError(
            f"invalid config ({', '.join(map(str, workflow.overwrite_configfiles or ['config']))}): "
            + "; ".join(problems)
        )


def expand_variants(cfg):
    """generative.variants (each over `default`) plus the Table 7 grid made from its base."""
    gen = cfg.get("generative") or {}
    base = gen.get("variants") or {}
    default = base.get("default", {})
    out = {name: {**default, **v} for name, v in base.items()}
    t7 = (cfg.get("ablations") or {}).get("table7")
    if t7 and t7["base"] in out:
        for w1 in t7["w1"]:
            for w2 in t7["w2"]:
                out[table7_variant(t7["base"], w1, w2)] = {
                    **out[t7["base"]],
                    "w1": w1,
                    "w2": w2,
                }
    return out


def table7_variant(base, w1, w2):
    return f"{base}_w1-{w1}_w2-{w2}"


def trainset_problems(cfg, key, trainsets):
    problems = []
    for ts in trainsets:
        kind, _, name = ts.partition("-")
        if ts == "origin":
            continue
        if kind == "paste" and name not in cfg["paste"]:
            problems.append(f"key '{key}': no paste method '{name}' in 'paste'")
        elif kind == "gen" and name not in expand_variants(cfg):
            problems.append(
                f"key '{key}': no variant '{name}' in 'generative.variants'"
                + (
                    ""
                    if cfg.get("generative")
                    else " (the config has no 'generative' section)"
                )
            )
    return problems


def context_problems(cfg):
    """Paste methods, surface rules, VLM and thesis sections that refer to each other."""
    problems = []
    ctx, methods = cfg.get("context"), set(cfg["paste"])
    if methods & {"context", "vlm"} and not ctx:
        problems.append(
            "key 'paste': context and vlm paste need a 'context' section (surfaces, rules)"
        )
    if "vlm" in methods and not cfg.get("vlm"):
        problems.append(
            "key 'paste.vlm': vlm paste needs a 'vlm' section (provider, model)"
        )
    if ctx:
        src = ctx["surfaces"]
        if src["source"] != "label" and "model" not in src:
            problems.append(
                f"key 'context.surfaces.model': source '{src['source']}' needs a model id"
            )
        if src["source"] == "sam_clip" and "clip_model" not in src:
            problems.append(
                "key 'context.surfaces.clip_model': source 'sam_clip' needs a CLIP model id"
            )
        for cls, spec in ctx["rules"].items():
            missing = [x for x in spec["surfaces"] if x not in src["names"]]
            if missing:
                problems.append(
                    f"key 'context.rules.{cls}.surfaces': {missing} not in context.surfaces.names"
                )
    th = cfg.get("thesis")
    if th:
        for key, section in (("split", "splits"), ("model", "models")):
            if th[key] not in cfg[section]:
                problems.append(f"key 'thesis.{key}': unknown {key} '{th[key]}'")
        for k, row in enumerate(th["rows"]):
            if row["loss"] not in cfg["losses"]:
                problems.append(
                    f"key 'thesis.rows.{k}.loss': unknown loss '{row['loss']}'"
                )
        problems += trainset_problems(
            cfg, "thesis.rows", [r["trainset"] for r in th["rows"]]
        )
        problems += trainset_problems(cfg, "thesis.examples", th.get("examples", []))
    return problems


def generative_problems(cfg):
    gen = cfg.get("generative")
    problems = []
    if gen:
        for name, v in expand_variants(cfg).items():
            key = f"generative.variants.{name}"
            g = v.get("generator")
            if g not in gen["generators"]:
                problems.append(f"key '{key}.generator': unknown generator '{g}'")
                continue
            inpaint = gen["generators"][g]["pipeline"] == "sdxl_inpaint"
            if inpaint != (v.get("prior") == "none"):
                problems.append(
                    f"key '{key}.prior': use prior 'none' with an sdxl_inpaint generator "
                    "and only with it"
                )
        if "table7" in (cfg.get("ablations") or {}):
            b = cfg["ablations"]["table7"]["base"]
            if b not in (gen.get("variants") or {}):
                problems.append(f"key 'ablations.table7.base': unknown variant '{b}'")
    abl = cfg.get("ablations")
    if abl:
        for key, section in (
            ("split", "splits"),
            ("model", "models"),
            ("loss", "losses"),
        ):
            if abl[key] not in cfg[section]:
                problems.append(f"key 'ablations.{key}': unknown {key} '{abl[key]}'")
        for t in ("table3", "table4", "table5", "table6"):
            problems += trainset_problems(cfg, f"ablations.{t}", abl.get(t, []))
    return problems


validate_config(config)

OUT = config["outdir"].rstrip("/")
RAW = config.get("raw_dir", "resources/raw").rstrip("/")
SEEDS = [int(s) for s in config["seeds"]]
HF_HOME = config.get("hf_home", "resources/huggingface").rstrip("/")
PASTE_METHODS = sorted(config["paste"])
GEN = config.get("generative") or {}
VARIANTS = expand_variants(config)
TRAINSETS = (
    ["origin"] + [f"paste-{m}" for m in PASTE_METHODS] + [f"gen-{v}" for v in VARIANTS]
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
    method=_alt(PASTE_METHODS),
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


def split_inputs_train(wildcards):
    """The dataset and the split's train list (what the generative rules read)."""
    check_split(wildcards)
    return {
        "dataset": dataset_dir(wildcards.dataset),
        "train_list": f"{OUT}/{wildcards.dataset}/{wildcards.split}/splits/train.txt",
    }


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
    if d["kind"] == "vaihingen":
        args = f"--kind vaihingen --root {shlex.quote(d['path'])}"
        args += (
            f" --patch-size {d.get('patch_size', 512)} --stride {d.get('stride', 512)}"
        )
        return args + (" --eroded" if d.get("eroded") else "")
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


def needs_surface_maps():
    ctx = config.get("context")
    return bool(ctx) and ctx["surfaces"]["source"] != "label"


def paste_inputs(wildcards):
    check_split(wildcards)
    inputs = {
        "dataset": dataset_dir(wildcards.dataset),
        "train_list": f"{OUT}/{wildcards.dataset}/{wildcards.split}/splits/train.txt",
        "pool": f"{OUT}/{wildcards.dataset}/{wildcards.split}/pool",
    }
    if wildcards.method in ("context", "vlm") and needs_surface_maps():
        inputs["surfaces"] = f"{OUT}/{wildcards.dataset}/{wildcards.split}/surfaces"
    if wildcards.method == "vlm" and config["vlm"]["provider"] == "local":
        inputs["models"] = model_inputs(config["vlm"]["model"])
    return inputs


def surfaces_inputs(wildcards):
    s = config["context"]["surfaces"]
    return {
        **split_inputs_train(wildcards),
        "models": model_inputs(s.get("model"), s.get("clip_model")),
    }


def paste_args(wildcards, input):
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
    if wildcards.method in ("context", "vlm"):
        out.append(f"--context-json {jarg(config['context'])}")
        if "surfaces" in input.keys():
            out.append(f"--surfaces {input.surfaces}")
    if wildcards.method == "vlm":
        out.append(f"--vlm-json {jarg(config['vlm'])}")
    if wildcards.method == "sigtor":
        extra = {k: p[k] for k in ("jitter", "blur_prob", "min_area") if k in p}
        if extra:
            out.append(f"--placer-args {jarg(extra)}")
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
    if pretrained(wildcards.model):
        inputs["weights"] = weights_marker(wildcards.model)
    kind, _, name = wildcards.trainset.partition("-")
    if kind == "paste":
        inputs["extra"] = paste_dir(
            wildcards.dataset, wildcards.split, name, wildcards.seed
        )
    elif kind == "gen":
        inputs["extra"] = gen_set(
            wildcards.dataset, wildcards.split, name, wildcards.seed
        )
    return inputs


def extra_sets(wildcards, input):
    if "extra" in input.keys():
        return f"--extra-set {input.extra}:{input.extra}/sets/all.txt"
    return ""


def pretrained(model):
    """Whether a model starts from pretrained weights (smp encoder or Mask2Former backbone)."""
    c = config["models"][model]
    return bool(c.get("encoder_weights") or c.get("backbone_weights"))


def model_json(model):
    """The model config for create_model (its per-model `train` overrides taken out)."""
    return {k: v for k, v in config["models"][model].items() if k != "train"}


def train_json(model):
    """The training recipe of a model: `train` with the model's own `train` block over it
    (Mask2Former: AdamW, lr 1e-4, weight decay 0.05, gradient clipping)."""
    return {**config["train"], **config["models"][model].get("train", {})}


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
        if pretrained(m) and (backend(m) == "smp" or m in used_models())
    ]
    refs = []
    if GEN:
        refs.append(GEN["captioner"]["model"])
        refs.append(GEN.get("priors", {}).get("annotators", "lllyasviel/Annotators"))
        refs.append(GEN.get("clip_model", "openai/clip-vit-large-patch14"))
        for g in GEN["generators"]:
            c = generator_cfg(g)
            refs += [c.get(k) for k in ("base", "vae", "adapter", "controlnet")]
        if GEN.get("fid_feature", "inception") == "inception":
            out.append(f"{HF_HOME}/.segaug/inception.ready")
    if needs_surface_maps():
        refs += [config["context"]["surfaces"].get(k) for k in ("model", "clip_model")]
    if config.get("vlm", {}).get("provider") == "local":
        refs.append(config["vlm"]["model"])
    out += sorted(
        {m for m in map(model_input, filter(None, refs)) if m and m.startswith(HF_HOME)}
    )
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


# ------------------------------------------------------------------ generative branch
def gen_prefix(dataset, split):
    return f"{OUT}/{dataset}/{split}/gen"


def gen_dir(dataset, split, variant, seed):
    return f"{gen_prefix(dataset, split)}/{variant}/seed{seed}"


def gen_set(dataset, split, variant, seed):
    """The synthetic set (D_gen) of one variant and seed: a canonical dataset."""
    return f"{gen_dir(dataset, split, variant, seed)}/set"


def generator_cfg(name):
    return {**GEN.get("generator_defaults", {}), **GEN["generators"][name]}


def variant_plan(variant):
    """The plan a variant's synthetic set follows (plans are shared across variants)."""
    v = VARIANTS[variant]
    if v.get("balance", True):
        return f"balance-{v.get('n_balance', 'auto')}"
    return f"uniform-{v.get('copies', 1)}"


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


def needs_captions(variant):
    return VARIANTS[variant].get("prompt", "appended") != "classes"


def generate_inputs(wildcards):
    check_split(wildcards)
    v = VARIANTS[wildcards.variant]
    g = generator_cfg(v["generator"])
    gp = gen_prefix(wildcards.dataset, wildcards.split)
    inputs = {
        "dataset": dataset_dir(wildcards.dataset),
        "plan": f"{gp}/plans/{variant_plan(wildcards.variant)}.json",
        "models": model_inputs(
            g.get("base"),
            g.get("vae"),
            g.get("adapter"),
            g.get("controlnet"),
            GEN.get("clip_model") if v.get("candidates", 1) > 1 else None,
        ),
    }
    if needs_captions(wildcards.variant):
        inputs["captions"] = f"{gp}/captions.json"
    if v.get("prior", "lineart") != "none":
        inputs["priors"] = f"{gp}/priors/{v['prior']}"
    return inputs


def synthetic_set_inputs(wildcards):
    g = generate_inputs(wildcards)
    return {
        "dataset": g["dataset"],
        "plan": g["plan"],
        "made_from": [g[k] for k in ("captions", "priors") if k in g] + g["models"],
    }


def generate_args(wildcards, input):
    v = VARIANTS[wildcards.variant]
    args = [
        f"--variant-json {jarg(v)}",
        f"--generator-json {jarg(generator_cfg(v['generator']))}",
        f"--class-prompts-json {jarg(GEN.get('class_prompts', {}))}",
        f"--shard-size {GEN.get('shard_size', 64)}",
        f"--device {GEN.get('device', 'auto')}",
    ]
    if "captions" in input.keys():
        args.append(f"--captions {input.captions}")
    if "priors" in input.keys():
        args.append(f"--priors {input.priors}")
    if v.get("candidates", 1) > 1:
        args.append(f"--clip-model {shlex.quote(GEN['clip_model'])}")
    return " ".join(args)


def num_shards(plan_json):
    with open(plan_json) as f:
        n = len(json.load(f)["entries"])
    return max(1, -(-n // int(GEN.get("shard_size", 64))))


def shard_dirs(wildcards):
    """The generation shards of a synthetic set; their number is known once the plan is."""
    plan = checkpoints.plan.get(
        dataset=wildcards.dataset,
        split=wildcards.split,
        plan=variant_plan(wildcards.variant),
    ).output[0]
    d = gen_dir(wildcards.dataset, wildcards.split, wildcards.variant, wildcards.seed)
    return [f"{d}/shards/{k}" for k in range(num_shards(plan))]


def ablation_runs(table):
    """(dataset, split, model, trainset, loss, seed) of every run an ablation table needs."""
    a = config["ablations"]
    ds = split_dataset(a["split"])
    if table == "table7":
        t7 = a["table7"]
        rows = [
            f"gen-{table7_variant(t7['base'], w1, w2)}"
            for w2 in t7["w2"]
            for w1 in t7["w1"]
        ]
    else:
        rows = a[table]
    return [
        (ds, a["split"], a["model"], ts, a["loss"], s) for ts in rows for s in SEEDS
    ]


def ablation_inputs(wildcards):
    runs = ablation_runs(wildcards.table)
    inputs = {
        "metrics": [os.path.join(run_dir("eval", *r), "metrics.json") for r in runs]
    }
    gens = sorted(
        {(r[0], r[1], r[3][4:], r[5]) for r in runs if r[3].startswith("gen-")}
    )
    if wildcards.table == "table4":
        a = config["ablations"]
        ds = split_dataset(a["split"])
        plans = {variant_plan(v) for _, _, v, _ in gens} | {"balance-auto"}
        inputs["plans"] = [
            f"{gen_prefix(ds, a['split'])}/plans/{p}.json" for p in sorted(plans)
        ]
        inputs["quality"] = [f"{gen_dir(*g)}/quality.json" for g in gens]
    return inputs


def synthetic_sets():
    """Every (dataset, split, variant, seed) a Table 1 or ablation run trains on."""
    runs = table1_runs() + [
        r
        for t in ("table3", "table4", "table5", "table6", "table7")
        if t in config.get("ablations", {})
        for r in ablation_runs(t)
    ]
    return sorted(
        {(r[0], r[1], r[3][4:], r[5]) for r in runs if r[3].startswith("gen-")}
    )


def table1_synthetic_sets():
    return sorted(
        {(r[0], r[1], r[3][4:], r[5]) for r in table1_runs() if r[3].startswith("gen-")}
    )


def synthetic_sets_tables():
    """The quality table of Table 1's synthetic sets, when D_final is generative."""
    if not table1_synthetic_sets():
        return []
    return [f"{OUT}/tables/synthetic_sets.csv", f"{OUT}/tables/synthetic_sets.md"]


# ------------------------------------------------------------------ the thesis comparison
def thesis_runs():
    """(dataset, split, model, trainset, loss, seed) of every run of the thesis table."""
    th = config["thesis"]
    ds = split_dataset(th["split"])
    return [
        (ds, th["split"], th["model"], r["trainset"], r["loss"], s)
        for r in th["rows"]
        for s in SEEDS
    ]


def thesis_inputs(wildcards):
    th = config["thesis"]
    ds = split_dataset(th["split"])
    return {
        "metrics": [
            os.path.join(run_dir("eval", *r), "metrics.json") for r in thesis_runs()
        ],
        "examples": [
            paste_dir(ds, th["split"], ts.removeprefix("paste-"), SEEDS[0])
            for ts in th.get("examples", [])
        ],
    }


def thesis_targets():
    if not config.get("thesis"):
        return []
    return [
        f"{OUT}/tables/thesis.csv",
        f"{OUT}/tables/thesis.md",
        f"{OUT}/figures/thesis_iou.png",
        f"{OUT}/figures/paste_examples.png",
    ]


# ------------------------------------------------------------------ figures and provenance
def figures_cfg():
    f = config.get("figures") or {}
    t1 = config["table1"]
    return {
        "model": f.get("model", t1["models"][0]),
        "split": f.get("split", t1["splits"][0]),
        "samples": f.get("samples", 4),
    }


def model_ids():
    """Every model a table or figure depends on, for its provenance sidecar."""
    ids = {"segmentation": {m: config["models"][m] for m in config["models"]}}
    if GEN:
        ids["captioner"] = GEN["captioner"]["model"]
        ids["clip"] = GEN.get("clip_model")
        ids["generators"] = {g: generator_cfg(g) for g in GEN["generators"]}
    if config.get("vlm"):
        ids["vlm"] = {
            k: config["vlm"].get(k) for k in ("provider", "model", "base_url")
        }
    if config.get("context"):
        ids["surfaces"] = config["context"]["surfaces"]
    return ids


def provenance_arg(rule_name, seeds=None):
    """--provenance-json for a table or figure script: config, seeds and model ids."""
    spec = {
        "config": config,
        "seeds": list(seeds if seeds is not None else SEEDS),
        "model_ids": model_ids(),
        "extra": rule_name,
    }
    return f"--provenance-json {jarg(spec)}"


def d_final_runs(seeds=None):
    """(dataset, split, model, trainset, loss, seed) of D_origin and D_final for the figures."""
    f = figures_cfg()
    ds, t1 = split_dataset(f["split"]), config["table1"]
    return [
        (ds, f["split"], f["model"], ts, t1["loss"], s)
        for ts in ("origin", t1["d_final"])
        for s in (seeds if seeds is not None else SEEDS)
    ]


def figure5_args(wildcards, input):
    t1 = config["table1"]
    by = {"origin": [], t1["d_final"]: []}
    for r, path in zip(d_final_runs(), input.curves):
        by[r[3]].append(path)
    return " ".join(
        f"--curve {'D_origin' if ts == 'origin' else 'D_final'} {' '.join(paths)}"
        for ts, paths in by.items()
    )


def gen_final_variant():
    d = config["table1"]["d_final"]
    return d[4:] if d.startswith("gen-") else None


def final_plan():
    """The plan of D_final's synthetic set on the figures' split."""
    split = figures_cfg()["split"]
    prefix = gen_prefix(split_dataset(split), split)
    return f"{prefix}/plans/{variant_plan(gen_final_variant())}.json"


def samples_inputs(wildcards):
    f = figures_cfg()
    ds, v = split_dataset(f["split"]), gen_final_variant()
    inputs = {"dataset": dataset_dir(ds), "set": gen_set(ds, f["split"], v, SEEDS[0])}
    if VARIANTS[v].get("prior", "lineart") != "none":
        inputs["priors"] = f"{gen_prefix(ds, f['split'])}/priors/{VARIANTS[v]['prior']}"
    return inputs


def report_targets():
    """Table 2, Figure 5 and, with a generative D_final, the sample grid and class histogram."""
    out = [
        f"{OUT}/tables/table2.csv",
        f"{OUT}/tables/table2.md",
        f"{OUT}/tables/table2.tex",
        f"{OUT}/figures/table2_iou.png",
        f"{OUT}/figures/figure5.png",
    ]
    if gen_final_variant():
        out += [f"{OUT}/figures/samples.png", f"{OUT}/figures/class_histogram.png"]
    return out
