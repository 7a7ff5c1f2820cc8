# Tables: Table 1 (models x splits x D_origin/D_final, mean and std over seeds) and the
# per-seed gather target used to rerun one seed.


include: "helpers/report.smk"


rule table1:
    input:
        metrics_files(),
    output:
        csv=report(
            f"{OUT}/tables/table1.csv",
            caption="../docs/captions/table1.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/table1.md",
        tex=f"{OUT}/tables/table1.tex",
    log:
        f"{OUT}/logs/table1.log",
    conda:
        "../envs/report.yaml"
    params:
        script=script("table1.py"),
        d_final=config["table1"]["d_final"],
        provenance=provenance_arg("table1"),
    shell:
        "python {params.script} --metrics {input} --d-final {params.d_final}"
        " --out-csv {output.csv} --out-md {output.md} --out-tex {output.tex}"
        " {params.provenance} 2> {log}"


rule seed_metrics:
    input:
        lambda w: metrics_files([int(w.seed)]),
    output:
        f"{OUT}/tables/seeds/seed{{seed}}.csv",
    log:
        f"{OUT}/logs/seed_metrics/seed{{seed}}.log",
    conda:
        "../envs/report.yaml"
    params:
        script=script("table1.py"),
    shell:
        "python {params.script} --metrics {input} --out-runs {output} 2> {log}"


rule ablation_table:
    """Tables 3-7 of the paper (ablations on one split and model, mean and std over seeds)."""
    input:
        unpack(ablation_inputs),
    output:
        csv=report(
            f"{OUT}/tables/{{table}}.csv",
            caption="../docs/captions/ablation.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/{{table}}.md",
    log:
        f"{OUT}/logs/ablation_table/{{table}}.log",
    wildcard_constraints:
        table="table[3-7]",
    conda:
        "../envs/report.yaml"
    params:
        script=script("ablation_table.py"),
        provenance=lambda w: provenance_arg(w.table),
        rows=lambda w: jarg(plan.ablation_rows(config, w.table)),
        extra=lambda w, input: (
            f"--plans {' '.join(input.plans)} --quality {' '.join(input.quality)}"
            if w.table == "table4"
            else ""
        ),
    shell:
        "python {params.script} --table {wildcards.table} --rows {params.rows}"
        " --metrics {input.metrics} {params.extra} {params.provenance}"
        " --out-csv {output.csv} --out-md {output.md} 2> {log}"


rule ablations:
    """Tables 3-7, those the config's `ablations` section defines (a target, not in `all`)."""
    input:
        [
            f"{OUT}/tables/{table}.{ext}"
            for table in ("table3", "table4", "table5", "table6", "table7")
            if table in (config.get("ablations") or {})
            for ext in ("csv", "md")
        ],


rule synthetic_sets_table:
    """Size, regenerations, entropy/CIR, CLIP score and FID of every synthetic set of Table 1."""
    input:
        quality=[f"{gen_dir(*g)}/quality.json" for g in table1_synthetic_sets()],
    output:
        csv=report(
            f"{OUT}/tables/synthetic_sets.csv",
            caption="../docs/captions/synthetic_sets.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/synthetic_sets.md",
    log:
        f"{OUT}/logs/synthetic_sets_table.log",
    conda:
        "../envs/report.yaml"
    params:
        script=script("ablation_table.py"),
        provenance=provenance_arg("synthetic_sets_table"),
    shell:
        "python {params.script} --table synthetic_sets --quality {input.quality}"
        " --out-csv {output.csv} --out-md {output.md} {params.provenance} 2> {log}"


rule thesis_table:
    """The thesis comparison: methods x per-class IoU (mean ± std over seeds) and its figures."""
    input:
        unpack(thesis_inputs),
    output:
        csv=report(
            f"{OUT}/tables/thesis.csv",
            caption="../docs/captions/thesis.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/thesis.md",
        bars=report(
            f"{OUT}/figures/thesis_iou.png",
            caption="../docs/captions/thesis_iou.rst",
            category="Figures",
        ),
        examples=report(
            f"{OUT}/figures/paste_examples.png",
            caption="../docs/captions/paste_examples.rst",
            category="Figures",
        ),
    log:
        f"{OUT}/logs/thesis_table.log",
    conda:
        "../envs/report.yaml"
    params:
        script=script("thesis_table.py"),
        provenance=provenance_arg("thesis_table"),
        rows=lambda w: jarg(config["thesis"]["rows"]),
        examples=lambda w, input: " ".join(
            f"{ts.removeprefix('paste-')}={d}"
            for ts, d in zip(config["thesis"]["examples"], input.examples)
        ),
    shell:
        "python {params.script} --rows {params.rows} --metrics {input.metrics}"
        " --examples {params.examples} --vlm-sets {input.vlm_sets}"
        " --out-csv {output.csv} --out-md {output.md}"
        " --out-bars {output.bars} --out-examples {output.examples}"
        " {params.provenance} 2> {log}"


rule table2:
    """Table 2: per-class IoU of one model on one split, D_origin vs D_final (+ LaTeX, bars)."""
    input:
        metrics=[f"{r.path(OUT, 'eval')}/metrics.json" for r in d_final_runs()],
    output:
        csv=report(
            f"{OUT}/tables/table2.csv",
            caption="../docs/captions/table2.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/table2.md",
        tex=f"{OUT}/tables/table2.tex",
        bars=report(
            f"{OUT}/figures/table2_iou.png",
            caption="../docs/captions/table2_iou.rst",
            category="Figures",
        ),
    log:
        f"{OUT}/logs/table2.log",
    conda:
        "../envs/report.yaml"
    params:
        script=script("figures.py"),
        d_final=config["table1"]["d_final"],
        loss=config["table1"]["loss"],
        provenance=provenance_arg("table2"),
    shell:
        "python {params.script} table2 --metrics {input.metrics} --d-final {params.d_final}"
        " --loss {params.loss} --out-csv {output.csv} --out-md {output.md}"
        " --out-tex {output.tex} --out-bars {output.bars} {params.provenance} 2> {log}"


rule figure5:
    """Figure 5: val mIoU over training steps, D_origin vs D_final, mean and band over seeds."""
    input:
        curves=[f"{r.path(OUT, 'train')}/curve.csv" for r in d_final_runs()],
    output:
        report(
            f"{OUT}/figures/figure5.png",
            caption="../docs/captions/figure5.rst",
            category="Figures",
        ),
    log:
        f"{OUT}/logs/figure5.log",
    conda:
        "../envs/report.yaml"
    params:
        script=script("figures.py"),
        curves=figure5_args,
        provenance=provenance_arg("figure5"),
    shell:
        "python {params.script} figure5 {params.curves} --out {output}"
        " {params.provenance} 2> {log}"


rule sample_grid:
    """Image / image prior / label prior / blended prior / generated, with the prompt."""
    input:
        unpack(samples_inputs),
    output:
        report(
            f"{OUT}/figures/samples.png",
            caption="../docs/captions/samples.rst",
            category="Figures",
        ),
    log:
        f"{OUT}/logs/sample_grid.log",
    conda:
        "../envs/report.yaml"
    params:
        script=script("figures.py"),
        priors=lambda w, input: (
            f"--priors {input.priors}" if "priors" in input.keys() else ""
        ),
        n=FIGURES["samples"],
        provenance=provenance_arg("sample_grid", SEEDS[:1]),
    shell:
        "python {params.script} samples --set {input.set} {params.priors}"
        " --dataset-root {input.dataset} --n {params.n} --out {output}"
        " {params.provenance} 2> {log}"


rule class_histogram:
    """Images per class before and after balancing (Algorithm 1), with entropy and CIR."""
    input:
        plan=lambda w: final_plan(),
    output:
        report(
            f"{OUT}/figures/class_histogram.png",
            caption="../docs/captions/class_histogram.rst",
            category="Figures",
        ),
    log:
        f"{OUT}/logs/class_histogram.log",
    conda:
        "../envs/report.yaml"
    params:
        script=script("figures.py"),
        provenance=provenance_arg("class_histogram", []),
    shell:
        "python {params.script} histogram --plan {input.plan} --out {output}"
        " {params.provenance} 2> {log}"
