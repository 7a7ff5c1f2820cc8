# The paper's generative augmentation, per split:
#   captions.json (BLIP-2) + priors/{prior}/ (image and label priors) + plans/{plan}.json
#   (Algorithm 1) -> {variant}/seed{seed}/shards/{k}/ (SDXL generation, a shard per job)
#   -> {variant}/seed{seed}/set/ (the synthetic VOC split, D_gen) + quality.json (CLIP, FID).
# Training on "gen-<variant>" uses D_final = D_gen + D_origin.


include: "helpers/generate.smk"


rule tiny_model:
    """A tiny random-weight model built from a config (demo and tests; no download)."""
    output:
        directory(f"{OUT}/tiny/{{tinykind}}"),
    log:
        f"{OUT}/logs/tiny_model/{{tinykind}}.log",
    conda:
        "../envs/generate.yaml"
    params:
        script=script("tiny_model.py"),
    shell:
        "python {params.script} --kind {wildcards.tinykind} --out {output} 2> {log}"


rule prefetch_hub:
    """Download one Hugging Face repo into hf_home (a localrule: the submit host has internet)."""
    output:
        f"{HF_HOME}/.segaug/hub/{{repo}}.ready",
    log:
        f"{OUT}/logs/prefetch_hub/{{repo}}.log",
    conda:
        "../envs/generate.yaml"
    params:
        script=script("prefetch_hub.py"),
        repo=lambda w: w.repo.replace("--", "/", 1),
        hf_home=lambda w, output: Path(output[0]).parents[2],
    shell:
        "HF_HOME={params.hf_home} python {params.script} --repo {params.repo}"
        " --out {output} 2> {log}"


rule prefetch_inception:
    """The FID Inception weights (torch-fidelity) into hf_home/torch."""
    output:
        f"{HF_HOME}/.segaug/inception.ready",
    log:
        f"{OUT}/logs/prefetch_hub/inception.log",
    conda:
        "../envs/generate.yaml"
    params:
        script=script("prefetch_hub.py"),
        torch_home=lambda w, output: Path(output[0]).parents[1] / "torch",
    shell:
        "TORCH_HOME={params.torch_home} python {params.script} --inception"
        " --out {output} 2> {log}"


rule captions:
    input:
        unpack(
            lambda w: {
                **split_inputs_train(w),
                "models": model_inputs(GEN["captioner"]["model"]),
            }
        ),
    output:
        f"{OUT}/{{dataset}}/{{split}}/gen/captions.json",
    log:
        f"{OUT}/logs/captions/{{dataset}}/{{split}}.log",
    benchmark:
        f"{OUT}/benchmarks/captions/{{dataset}}/{{split}}.tsv"
    conda:
        "../envs/generate.yaml"
    params:
        script=script("captions.py"),
        captioner=lambda w: jarg(GEN["captioner"]),
        device=GEN.get("device", "auto"),
        hf_home=HF_HOME,
    shell:
        "HF_HOME={params.hf_home} HF_HUB_OFFLINE=1"
        " python {params.script} --dataset-root {input.dataset} --split-list {input.train_list}"
        " --captioner-json {params.captioner} --device {params.device} --out {output}"
        " 2> {log}"


rule priors:
    input:
        unpack(
            lambda w: {
                **split_inputs_train(w),
                "models": (
                    model_inputs(
                        GEN.get("priors", {}).get(
                            "annotators", "lllyasviel/Annotators"
                        )
                    )
                    if w.prior != "canny"
                    else []
                ),
            }
        ),
    output:
        directory(f"{OUT}/{{dataset}}/{{split}}/gen/priors/{{prior}}"),
    log:
        f"{OUT}/logs/priors/{{dataset}}/{{split}}/{{prior}}.log",
    benchmark:
        f"{OUT}/benchmarks/priors/{{dataset}}/{{split}}/{{prior}}.tsv"
    conda:
        "../envs/generate.yaml"
    params:
        script=script("priors.py"),
        priors=jarg(GEN.get("priors", {})),
        device=GEN.get("device", "auto"),
        hf_home=HF_HOME,
    shell:
        "HF_HOME={params.hf_home} HF_HUB_OFFLINE=1"
        " python {params.script} --dataset-root {input.dataset} --split-list {input.train_list}"
        " --prior {wildcards.prior} --priors-json {params.priors} --device {params.device}"
        " --out {output} 2> {log}"


checkpoint plan:
    """Algorithm 1: which real image each synthetic image is generated from."""
    input:
        unpack(split_inputs_train),
    output:
        f"{OUT}/{{dataset}}/{{split}}/gen/plans/{{plan}}.json",
    log:
        f"{OUT}/logs/plan/{{dataset}}/{{split}}/{{plan}}.log",
    conda:
        "../envs/generate.yaml"
    params:
        script=script("plan.py"),
        exclude=" ".join(shlex.quote(c) for c in GEN.get("balance_exclude", [])),
    shell:
        "python {params.script} --dataset-root {input.dataset} --split-list {input.train_list}"
        " --plan {wildcards.plan} --exclude {params.exclude} --out {output} 2> {log}"


rule generate:
    """One shard of a synthetic set: models load once, generate shard_size images."""
    input:
        unpack(generate_inputs),
        seed=seed_file,
    output:
        directory(
            f"{OUT}/{{dataset}}/{{split}}/gen/{{variant}}/seed{{seed}}/shards/{{shard}}"
        ),
    log:
        f"{OUT}/logs/generate/{{dataset}}/{{split}}/{{variant}}/seed{{seed}}/{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/generate/{{dataset}}/{{split}}/{{variant}}/seed{{seed}}/{{shard}}.tsv"
    conda:
        "../envs/generate.yaml"
    params:
        script=script("generate.py"),
        args=generate_args,
        hf_home=HF_HOME,
    shell:
        "HF_HOME={params.hf_home} HF_HUB_OFFLINE=1"
        " python {params.script} --dataset-root {input.dataset} --plan {input.plan}"
        " --shard {wildcards.shard} --seed {wildcards.seed} {params.args} --out {output}"
        " 2> {log}"


rule synthetic_set:
    """Gather the shards into one synthetic VOC split (D_gen), with its manifest.

    The shards are known once the plan (a checkpoint) exists; captions and priors are declared
    here as well, so that `snakemake -n` and `--dag` show them before any plan is made.
    """
    input:
        unpack(synthetic_set_inputs),
        shards=shard_dirs,
    output:
        directory(f"{OUT}/{{dataset}}/{{split}}/gen/{{variant}}/seed{{seed}}/set"),
    log:
        f"{OUT}/logs/synthetic_set/{{dataset}}/{{split}}/{{variant}}/seed{{seed}}.log",
    conda:
        "../envs/generate.yaml"
    params:
        script=script("synthetic_set.py"),
        exclude=" ".join(shlex.quote(c) for c in GEN.get("balance_exclude", [])),
    shell:
        "python {params.script} --dataset-root {input.dataset} --plan {input.plan}"
        " --shards {input.shards} --exclude {params.exclude} --out {output} 2> {log}"


rule gen_quality:
    """CLIP score of each synthetic image against its prompt; FID of the set vs the real split."""
    input:
        unpack(
            lambda w: {
                **split_inputs_train(w),
                "set": gen_set(w.dataset, w.split, w.variant, w.seed),
                "models": model_inputs(GEN.get("clip_model"))
                + (
                    [f"{HF_HOME}/.segaug/inception.ready"]
                    if GEN.get("fid_feature", "inception") == "inception"
                    else []
                ),
            }
        ),
    output:
        f"{OUT}/{{dataset}}/{{split}}/gen/{{variant}}/seed{{seed}}/quality.json",
    log:
        f"{OUT}/logs/gen_quality/{{dataset}}/{{split}}/{{variant}}/seed{{seed}}.log",
    conda:
        "../envs/generate.yaml"
    params:
        script=script("gen_quality.py"),
        clip=shlex.quote(GEN.get("clip_model", "")),
        fid=GEN.get("fid_feature", "inception"),
        device=GEN.get("device", "auto"),
        hf_home=HF_HOME,
        torch_home=f"{HF_HOME}/torch",
        info=lambda w: jarg(
            {
                "dataset": w.dataset,
                "split": w.split,
                "variant": w.variant,
                "seed": int(w.seed),
            }
        ),
    shell:
        "HF_HOME={params.hf_home} TORCH_HOME={params.torch_home} HF_HUB_OFFLINE=1"
        " python {params.script} --dataset-root {input.dataset} --split-list {input.train_list}"
        " --set {input.set} --clip-model {params.clip} --fid-feature {params.fid}"
        " --info-json {params.info}"
        " --device {params.device} --out {output} 2> {log}"
