# Training (the MMSegmentation VOC recipe on segmentation-models-pytorch + Lightning, or on
# MMSegmentation itself for `backend: mmseg` models) and evaluation on the split's val list.
# The conda env follows the model's backend (train_env: envs/train.yaml or envs/mmseg.yaml).
# state/ holds the resumable Lightning checkpoint; it is not an output, so a killed or
# preempted job that is rerun resumes from it instead of starting over.


include: "helpers/train.smk"


rule train:
    input:
        unpack(train_inputs),
        seed=seed_file,
    output:
        model=f"{OUT}/{{dataset}}/{{split}}/train/{{model}}/{{trainset}}/{{loss}}/seed{{seed}}/model.pt",
        curve=f"{OUT}/{{dataset}}/{{split}}/train/{{model}}/{{trainset}}/{{loss}}/seed{{seed}}/curve.csv",
    log:
        f"{OUT}/logs/train/{{dataset}}/{{split}}/{{model}}/{{trainset}}/{{loss}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/train/{{dataset}}/{{split}}/{{model}}/{{trainset}}/{{loss}}/seed{{seed}}.tsv"
    conda:
        train_env
    threads: 1
    params:
        script=script("train.py"),
        state=lambda w: os.path.join(
            run_of(w).path(OUT, "train"),
            "state",
        ),
        extra=extra_sets,
        model=lambda w: jarg(model_json(w.model)),
        train=lambda w: jarg(train_json(w.model)),
        loss=lambda w: jarg(config["losses"][w.loss]),
        run=lambda w: jarg(run_info(w)),
        logger=config.get("logger", "tensorboard"),
        hf_home=HF_HOME,
    shell:
        "HF_HOME={params.hf_home} HF_HUB_OFFLINE=1 TORCH_HOME={params.hf_home}/torch"
        " python {params.script} --dataset-root {input.dataset}"
        " --train-list {input.train_list} {params.extra} --val-list {input.val_list}"
        " --model-json {params.model} --train-json {params.train} --loss-json {params.loss}"
        " --run-json {params.run} --seed {wildcards.seed} --threads {threads}"
        " --logger {params.logger}"
        " --out-model {output.model} --out-curve {output.curve} --state-dir {params.state}"
        " 2> {log}"


rule evaluate:
    input:
        dataset=lambda w: dataset_dir(w.dataset),
        val_list=split_list("{dataset}", "{split}", "val"),
        model=f"{OUT}/{{dataset}}/{{split}}/train/{{model}}/{{trainset}}/{{loss}}/seed{{seed}}/model.pt",
    output:
        metrics=f"{OUT}/{{dataset}}/{{split}}/eval/{{model}}/{{trainset}}/{{loss}}/seed{{seed}}/metrics.json",
        confusion=f"{OUT}/{{dataset}}/{{split}}/eval/{{model}}/{{trainset}}/{{loss}}/seed{{seed}}/confusion.csv",
    log:
        f"{OUT}/logs/evaluate/{{dataset}}/{{split}}/{{model}}/{{trainset}}/{{loss}}/seed{{seed}}.log",
    conda:
        train_env
    threads: 1
    params:
        script=script("evaluate.py"),
    shell:
        "python {params.script} --dataset-root {input.dataset} --val-list {input.val_list}"
        " --model {input.model} --threads {threads} --out-metrics {output.metrics}"
        " --out-confusion {output.confusion} 2> {log}"
