# Input functions and argument builders of rules/paste.smk (pasted sets). What a method needs
# comes from its registry entry (segaug.paste.methods): the config sections it reads are passed
# to the job, and each section may bring inputs of its own (SECTION_INPUTS).


def needs_surface_maps():
    ctx = config.get("context")
    return bool(ctx) and ctx["surfaces"]["source"] != "label"


def context_inputs(wildcards):
    """The open-vocabulary surface maps of the split, for surfaces that are not classes."""
    if not needs_surface_maps():
        return {}
    return {"surfaces": f"{OUT}/{wildcards.dataset}/{wildcards.split}/surfaces"}


def vlm_inputs(wildcards):
    """A local VLM: the model files it loads."""
    if config["vlm"]["provider"] != "local":
        return {}
    return {"models": model_inputs(config["vlm"]["model"])}


# config section -> inputs a paste job reading that section needs
SECTION_INPUTS = {"context": context_inputs, "vlm": vlm_inputs}


def paste_inputs(wildcards):
    require_split_of_dataset(wildcards)
    inputs = {
        "dataset": dataset_dir(wildcards.dataset),
        "train_list": split_list(wildcards.dataset, wildcards.split, "train"),
        "pool": f"{OUT}/{wildcards.dataset}/{wildcards.split}/pool",
    }
    for section in get_method(wildcards.method).sections:
        if section in SECTION_INPUTS:
            inputs.update(SECTION_INPUTS[section](wildcards))
    return inputs


def surfaces_inputs(wildcards):
    s = config["context"]["surfaces"]
    return {
        **split_inputs_train(wildcards),
        "models": model_inputs(s.get("model"), s.get("clip_model")),
    }


def paste_args(wildcards, input):
    """The method's config block and the config sections it reads, as JSON arguments."""
    method = get_method(wildcards.method)
    out = [f"--options-json {jarg(config['paste'][method.name])}"]
    if method.sections:
        sections = {s: config[s] for s in method.sections}
        out.append(f"--sections-json {jarg(sections)}")
    if "surfaces" in input.keys():
        out.append(f"--surfaces {input.surfaces}")
    return " ".join(out)
