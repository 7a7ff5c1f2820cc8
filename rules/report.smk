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
