# Tables: Table 1 (models x splits x D_origin/D_final, mean and std over seeds) and the
# per-seed gather target used to rerun one seed.


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
    log:
        f"{OUT}/logs/table1.log",
    conda:
        "../envs/report.yaml"
    params:
        script=script("table1.py"),
        d_final=config["table1"]["d_final"],
    shell:
        "python {params.script} --metrics {input} --d-final {params.d_final}"
        " --out-csv {output.csv} --out-md {output.md} 2> {log}"


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
        rows=lambda w: jarg([r[3] for r in ablation_runs(w.table) if r[5] == SEEDS[0]]),
        extra=lambda w, input: (
            f"--plans {' '.join(input.plans)} --quality {' '.join(input.quality)}"
            if w.table == "table4"
            else ""
        ),
    shell:
        "python {params.script} --table {wildcards.table} --rows {params.rows}"
        " --metrics {input.metrics} {params.extra}"
        " --out-csv {output.csv} --out-md {output.md} 2> {log}"


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
    shell:
        "python {params.script} --table synthetic_sets --quality {input.quality}"
        " --out-csv {output.csv} --out-md {output.md} 2> {log}"


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
        rows=lambda w: jarg(config["thesis"]["rows"]),
        examples=lambda w, input: " ".join(
            f"{ts.removeprefix('paste-')}={d}"
            for ts, d in zip(config["thesis"]["examples"], input.examples)
        ),
    shell:
        "python {params.script} --rows {params.rows} --metrics {input.metrics}"
        " --examples {params.examples} --out-csv {output.csv} --out-md {output.md}"
        " --out-bars {output.bars} --out-examples {output.examples} 2> {log}"
