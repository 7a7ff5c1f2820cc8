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
    p = config["paste"][wildcards.method]
    flags = {
        "copies": "--copies",
        "objects_per_image": "--objects-per-image",
        "scale_range": "--scale-range",
        "flip_prob": "--flip-prob",
        "blend": "--blend",
        "feather_px": "--feather-px",
        "image_format": "--image-format",
        "compress_level": "--compress-level",
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
