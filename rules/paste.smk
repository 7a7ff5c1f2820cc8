# Pasted sets per split x method x seed: images, labels and a manifest of every paste.
# Methods: random, context (surface rules), vlm (VLM points + surface rule), sigtor (packing).


include: "helpers/paste.smk"


rule paste:
    input:
        unpack(paste_inputs),
        seed=seed_file,
    output:
        directory(f"{OUT}/{{dataset}}/{{split}}/paste/{{method}}/seed{{seed}}"),
    log:
        f"{OUT}/logs/paste/{{dataset}}/{{split}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/paste/{{dataset}}/{{split}}/{{method}}/seed{{seed}}.tsv"
    conda:
        "../envs/paste.yaml"
    threads: 4
    params:
        script=script("paste.py"),
        args=paste_args,
        hf_home=HF_HOME,
    shell:
        "HF_HOME={params.hf_home} HF_HUB_OFFLINE=1 python {params.script} --method {wildcards.method} --dataset-root {input.dataset}"
        " --split-list {input.train_list} --pool {input.pool} --seed {wildcards.seed}"
        " {params.args} --threads {threads} --out {output} 2> {log}"


rule surfaces:
    """Open-vocabulary surface maps of a split (surfaces the label set lacks, e.g. road on VOC)."""
    input:
        unpack(surfaces_inputs),
    output:
        directory(f"{OUT}/{{dataset}}/{{split}}/surfaces"),
    log:
        f"{OUT}/logs/surfaces/{{dataset}}/{{split}}.log",
    benchmark:
        f"{OUT}/benchmarks/surfaces/{{dataset}}/{{split}}.tsv"
    conda:
        "../envs/generate.yaml"
    params:
        script=script("surfaces.py"),
        surfaces=lambda w: jarg(config["context"]["surfaces"]),
        hf_home=HF_HOME,
    shell:
        "HF_HOME={params.hf_home} HF_HUB_OFFLINE=1"
        " python {params.script} --dataset-root {input.dataset} --split-list {input.train_list}"
        " --surfaces-json {params.surfaces} --out {output} 2> {log}"
