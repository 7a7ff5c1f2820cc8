# Input functions and argument builders of rules/train.smk (training and evaluation).


def train_inputs(wildcards):
    require_split_of_dataset(wildcards)
    inputs = {
        "dataset": dataset_dir(wildcards.dataset),
        "train_list": split_list(wildcards.dataset, wildcards.split, "train"),
        "val_list": split_list(wildcards.dataset, wildcards.split, "val"),
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


def model_json(model):
    """The model config for create_model (its per-model `train` overrides taken out)."""
    return {k: v for k, v in config["models"][model].items() if k != "train"}


def train_json(model):
    """The training recipe of a model: `train` with the model's own `train` block over it
    (Mask2Former: AdamW, lr 1e-4, weight decay 0.05, gradient clipping)."""
    return {**config["train"], **config["models"][model].get("train", {})}


def run_of(wildcards):
    """The Run (segaug.workflow.plan) a train/evaluate job's wildcards name."""
    return plan.Run(
        wildcards.dataset,
        wildcards.split,
        wildcards.model,
        wildcards.trainset,
        wildcards.loss,
        int(wildcards.seed),
    )


def run_info(wildcards):
    return dataclasses.asdict(run_of(wildcards))
