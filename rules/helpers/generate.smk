# Input functions and argument builders of rules/generate.smk (the generative branch).


def generator_cfg(name):
    return {**GEN.get("generator_defaults", {}), **GEN["generators"][name]}


def plan_of_variant(name):
    """The plan (e.g. balance-auto) the variant called ``name`` follows."""
    return plan.plan_name(VARIANTS[name])


def needs_captions(variant):
    return VARIANTS[variant].get("prompt", "appended") != "classes"


def generate_inputs(wildcards):
    require_split_of_dataset(wildcards)
    v = VARIANTS[wildcards.variant]
    g = generator_cfg(v["generator"])
    gp = gen_prefix(wildcards.dataset, wildcards.split)
    inputs = {
        "dataset": dataset_dir(wildcards.dataset),
        "plan": f"{gp}/plans/{plan_of_variant(wildcards.variant)}.json",
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
    plan_file = checkpoints.plan.get(
        dataset=wildcards.dataset,
        split=wildcards.split,
        plan=plan_of_variant(wildcards.variant),
    ).output[0]
    d = gen_dir(wildcards.dataset, wildcards.split, wildcards.variant, wildcards.seed)
    return [f"{d}/shards/{k}" for k in range(num_shards(plan_file))]
