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
    require_split_of_dataset(wildcards)
    inputs = {"dataset": dataset_dir(wildcards.dataset)}
    if get_kind(dataset_cfg(wildcards.dataset)["kind"]).in_place:
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
    if get_kind(d["kind"]).downloads(d):
        return {"tar": voc_tar(wildcards.dataset)}
    return {}


def prepare_args(wildcards, input, threads):
    """The dataset's config block and class table, as the kind's prepare() takes them."""
    table = {k: CLASS_TABLES[wildcards.dataset][k] for k in ("names", "palette")}
    args = f"--config-json {jarg(dataset_cfg(wildcards.dataset))} --classes-json {jarg(table)}"
    args += f" --threads {threads}"
    return args + (f" --tar {input.tar}" if "tar" in input.keys() else "")


def source_fingerprint(wildcards):
    """Size + mtime of every source file: a changed source makes Snakemake plan the
    conversion (or the in-place check) again ("params changed")."""
    return dataset_fingerprint(dataset_cfg(wildcards.dataset))


def dataset_ready(dataset):
    """What proves a dataset usable: the converted dataset, or for a canonical dataset used
    in place, its verification record."""
    if get_kind(dataset_cfg(dataset)["kind"]).in_place:
        return f"{OUT}/{dataset}/verified.json"
    return dataset_dir(dataset)


def prefetch_targets():
    """Everything a run downloads: datasets, id lists, pretrained weights (for `prefetch`)."""
    out = []
    for name, d in config["datasets"].items():
        if get_kind(d["kind"]).downloads(d):
            out.append(voc_tar(name))
    out += [
        list_file(n)
        for n in config.get("lists", {})
        if not config["lists"][n].get("path")
    ]
    out += [
        weights_marker(m)
        for m in config["models"]
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
