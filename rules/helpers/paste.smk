# Input functions and argument builders of rules/paste.smk (pasted sets).


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
    """The method's config block as one JSON argument, plus the sections it reads."""
    out = [f"--options-json {jarg(config['paste'][wildcards.method])}"]
    if wildcards.method in ("context", "vlm"):
        out.append(f"--context-json {jarg(config['context'])}")
        if "surfaces" in input.keys():
            out.append(f"--surfaces {input.surfaces}")
    if wildcards.method == "vlm":
        out.append(f"--vlm-json {jarg(config['vlm'])}")
    return " ".join(out)
