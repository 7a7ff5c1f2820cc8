# Raw data (downloads with checksums), the canonical dataset, split lists.


include: "helpers/data.smk"


rule download_dataset:
    output:
        f"{RAW}/{{dataset}}.tar",
    log:
        f"{OUT}/logs/download_dataset/{{dataset}}.log",
    conda:
        "../envs/data.yaml"
    params:
        script=script("download.py"),
        url=lambda w: dataset_cfg(w.dataset)["url"],
        checksum=lambda w: dataset_cfg(w.dataset)["checksum"],
    shell:
        "python {params.script} --url {params.url} --checksum {params.checksum}"
        " --out {output} 2> {log}"


rule download_list:
    output:
        f"{RAW}/lists/{{listname}}.txt",
    log:
        f"{OUT}/logs/download_list/{{listname}}.log",
    conda:
        "../envs/data.yaml"
    params:
        script=script("download.py"),
        url=lambda w: config["lists"][w.listname]["url"],
        checksum=lambda w: config["lists"][w.listname]["checksum"],
    shell:
        "python {params.script} --url {params.url} --checksum {params.checksum}"
        " --out {output} 2> {log}"


rule prepare_dataset:
    input:
        unpack(prepare_inputs),
    output:
        directory(f"{OUT}/{{dataset}}/dataset"),
    log:
        f"{OUT}/logs/prepare_dataset/{{dataset}}.log",
    benchmark:
        f"{OUT}/benchmarks/prepare_dataset/{{dataset}}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    params:
        script=script("prepare_dataset.py"),
        args=prepare_args,
        source=source_fingerprint,
    shell:
        "python {params.script} {params.args} --out {output} 2> {log}"


rule verify_dataset:
    """A dataset used in place (kind canonical): every file checked once; the record gates its splits."""
    output:
        f"{OUT}/{{dataset}}/verified.json",
    log:
        f"{OUT}/logs/verify_dataset/{{dataset}}.log",
    benchmark:
        f"{OUT}/benchmarks/verify_dataset/{{dataset}}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    params:
        script=script("prepare_dataset.py"),
        args=prepare_args,
        source=source_fingerprint,
    shell:
        "python {params.script} {params.args} --out {output} 2> {log}"


rule make_split:
    input:
        unpack(split_inputs),
    output:
        train=split_list("{dataset}", "{split}", "train"),
        val=split_list("{dataset}", "{split}", "val"),
    log:
        f"{OUT}/logs/make_split/{{dataset}}/{{split}}.log",
    conda:
        "../envs/data.yaml"
    params:
        script=script("make_split.py"),
        train=lambda w: split_source(w, "train"),
        val=lambda w: split_source(w, "val"),
    shell:
        "python {params.script} --dataset-root {input.dataset}"
        " --train-list {params.train} --val-list {params.val}"
        " --out-train {output.train} --out-val {output.val} 2> {log}"


rule prefetch_weights:
    output:
        f"{HF_HOME}/.segaug/{{model}}.ready",
    log:
        f"{OUT}/logs/prefetch_weights/{{model}}.log",
    conda:
        train_env
    params:
        script=script("prefetch_weights.py"),
        model=lambda w: jarg(model_json(w.model)),
        hf_home=lambda w, output: Path(output[0]).parent.parent,
    shell:
        "HF_HOME={params.hf_home} TORCH_HOME={params.hf_home}/torch"
        " python {params.script} --model-json {params.model}"
        " --out {output} 2> {log}"


rule seed_file:
    """The seed as a file, an input of every job where a seed enters (paste, generate, train):
    `--forcerun {outdir}/seeds/N.txt` reruns seed N and everything that reads its results.
    """
    output:
        f"{OUT}/seeds/{{seed}}.txt",
    log:
        f"{OUT}/logs/seed_file/{{seed}}.log",
    conda:
        "../envs/data.yaml"
    shell:
        "echo {wildcards.seed} > {output} 2> {log}"
