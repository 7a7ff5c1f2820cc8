# Pasted sets per split x method x seed: images, labels and a manifest of every paste.


rule paste:
    input:
        dataset=lambda w: dataset_dir(w.dataset),
        train_list=f"{OUT}/{{dataset}}/{{split}}/splits/train.txt",
        pool=f"{OUT}/{{dataset}}/{{split}}/pool",
    output:
        directory(f"{OUT}/{{dataset}}/{{split}}/paste/{{method}}/seed{{seed}}"),
    log:
        f"{OUT}/logs/paste/{{dataset}}/{{split}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/paste/{{dataset}}/{{split}}/{{method}}/seed{{seed}}.tsv"
    conda:
        "../envs/paste.yaml"
    params:
        script=script("paste.py"),
        args=paste_args,
    shell:
        "python {params.script} --method {wildcards.method} --dataset-root {input.dataset}"
        " --split-list {input.train_list} --pool {input.pool} --seed {wildcards.seed}"
        " {params.args} --out {output} 2> {log}"
