# Input functions and argument builders of rules/data.smk (datasets, split lists and downloads).


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
    if dataset_cfg(wildcards.dataset)["kind"] == "canonical":
        inputs["verified"] = dataset_ready(wildcards.dataset)
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


def prepare_args(wildcards, input, threads):
    d = dataset_cfg(wildcards.dataset)
    if d["kind"] == "voc":
        table = {k: CLASS_TABLES[wildcards.dataset][k] for k in ("names", "palette")}
        args = f"--kind voc --classes-json {jarg(table)} --threads {threads}"
        args += f" --year {d['year']}" if d.get("year") else ""
        if d.get("ignore_color"):
            args += " --ignore-color " + " ".join(map(str, d["ignore_color"]))
        if d.get("path"):
            return f"{args} --voc-root {shlex.quote(d['path'])}"
        return f"{args} --voc-tar {input.tar}"
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


def source_fingerprint(wildcards):
    """Size + mtime of every source file: a changed source makes Snakemake plan the
    conversion (or the in-place check) again ("params changed")."""
    return dataset_fingerprint(dataset_cfg(wildcards.dataset))


def dataset_ready(dataset):
    """What proves a dataset usable: the converted dataset, or for a canonical dataset used
    in place, its verification record."""
    if dataset_cfg(dataset)["kind"] == "canonical":
        return f"{OUT}/{dataset}/verified.json"
    return dataset_dir(dataset)


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
    out += [weights_marker(m) for m, c in config["models"].items() if pretrained(m)]
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
