# Crop stage: minority-class objects of the training split -> object pool (RGBA + index).


include: "helpers/pool.smk"


rule pool:
    input:
        dataset=lambda w: dataset_dir(w.dataset),
        train_list=split_list("{dataset}", "{split}", "train"),
    output:
        directory(f"{OUT}/{{dataset}}/{{split}}/pool"),
    log:
        f"{OUT}/logs/pool/{{dataset}}/{{split}}.log",
    benchmark:
        f"{OUT}/benchmarks/pool/{{dataset}}/{{split}}.tsv"
    conda:
        "../envs/paste.yaml"
    params:
        script=script("pool.py"),
        args=pool_args(),
    shell:
        "python {params.script} --dataset-root {input.dataset} --split-list {input.train_list}"
        " {params.args} --out {output} 2> {log}"
