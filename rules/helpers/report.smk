# Input functions and argument builders of rules/report.smk (tables, figures and the report).


# Which runs each table and figure needs is planned in segaug.workflow.plan (a list of Run);
# these helpers turn runs into the paths of their metrics and curves.
def seeds_or_all(seeds):
    return SEEDS if seeds is None else seeds


def table1_runs(seeds=None):
    return plan.table1_runs(config, seeds_or_all(seeds))


def eval_files(runs, name="metrics.json"):
    return [f"{r.path(OUT, 'eval')}/{name}" for r in runs]


def metrics_files(seeds=None):
    return eval_files(table1_runs(seeds))


def ablation_inputs(wildcards):
    runs = plan.ablation_runs(config, wildcards.table, SEEDS)
    inputs = {"metrics": eval_files(runs)}
    if wildcards.table == "table4":
        gens = plan.synthetic_sets(runs)
        a = config["ablations"]
        ds = split_dataset(a["split"])
        plans = {plan_of_variant(g.variant) for g in gens} | {"balance-auto"}
        inputs["plans"] = [
            f"{gen_prefix(ds, a['split'])}/plans/{p}.json" for p in sorted(plans)
        ]
        inputs["quality"] = [f"{gen_dir(*g)}/quality.json" for g in gens]
    return inputs


def table1_synthetic_sets():
    return plan.synthetic_sets(table1_runs())


def synthetic_sets_tables():
    """The quality table of Table 1's synthetic sets, when D_final is generative."""
    if not table1_synthetic_sets():
        return []
    return [f"{OUT}/tables/synthetic_sets.csv", f"{OUT}/tables/synthetic_sets.md"]


def vlm_paste_methods(rows):
    """Paste methods of the thesis rows that read the `vlm` section (their share of objects
    the VLM placed is a column of the table)."""
    methods = [
        r["trainset"].removeprefix("paste-")
        for r in rows
        if r["trainset"].startswith("paste-")
    ]
    return [m for m in dict.fromkeys(methods) if "vlm" in get_method(m).sections]


def thesis_inputs(wildcards):
    th = config["thesis"]
    ds = split_dataset(th["split"])
    return {
        "metrics": eval_files(plan.thesis_runs(config, SEEDS)),
        "examples": [
            paste_dir(ds, th["split"], ts.removeprefix("paste-"), SEEDS[0])
            for ts in th.get("examples", [])
        ],
        "vlm_sets": [
            paste_dir(ds, th["split"], m, s)
            for m in vlm_paste_methods(th["rows"])
            for s in SEEDS
        ],
    }


def thesis_targets():
    if not config.get("thesis"):
        return []
    return [
        f"{OUT}/tables/thesis.csv",
        f"{OUT}/tables/thesis.md",
        f"{OUT}/figures/thesis_iou.png",
        f"{OUT}/figures/paste_examples.png",
    ]


def model_ids():
    """Every model a table or figure depends on, for its provenance sidecar."""
    ids = {"segmentation": {m: config["models"][m] for m in config["models"]}}
    if GEN:
        ids["captioner"] = GEN["captioner"]["model"]
        ids["clip"] = GEN.get("clip_model")
        ids["generators"] = {g: generator_cfg(g) for g in GEN["generators"]}
    if config.get("vlm"):
        ids["vlm"] = {
            k: config["vlm"].get(k) for k in ("provider", "model", "base_url")
        }
    if config.get("context"):
        ids["surfaces"] = config["context"]["surfaces"]
    return ids


def provenance_arg(rule_name, seeds=None):
    """--provenance-json for a table or figure script: config, seeds and model ids."""
    spec = {
        "config": config,
        "seeds": list(seeds_or_all(seeds)),
        "model_ids": model_ids(),
        "extra": rule_name,
    }
    return f"--provenance-json {jarg(spec)}"


def d_final_runs():
    return plan.d_final_runs(config, SEEDS)


def figure5_args(wildcards, input):
    t1 = config["table1"]
    by = {"origin": [], t1["d_final"]: []}
    for r, path in zip(d_final_runs(), input.curves):
        by[r.trainset].append(path)
    return " ".join(
        f"--curve {'D_origin' if ts == 'origin' else 'D_final'} {' '.join(paths)}"
        for ts, paths in by.items()
    )


def final_plan():
    """The plan of D_final's synthetic set on the figures' split."""
    split = FIGURES["split"]
    prefix = gen_prefix(split_dataset(split), split)
    return f"{prefix}/plans/{plan_of_variant(plan.gen_final_variant(config))}.json"


def samples_inputs(wildcards):
    ds, v = split_dataset(FIGURES["split"]), plan.gen_final_variant(config)
    inputs = {
        "dataset": dataset_dir(ds),
        "set": gen_set(ds, FIGURES["split"], v, SEEDS[0]),
    }
    if VARIANTS[v].get("prior", "lineart") != "none":
        inputs["priors"] = (
            f"{gen_prefix(ds, FIGURES['split'])}/priors/{VARIANTS[v]['prior']}"
        )
    return inputs


def report_targets():
    """Table 2, Figure 5 and, with a generative D_final, the sample grid and class histogram."""
    out = [
        f"{OUT}/tables/table2.csv",
        f"{OUT}/tables/table2.md",
        f"{OUT}/tables/table2.tex",
        f"{OUT}/figures/table2_iou.png",
        f"{OUT}/figures/figure5.png",
    ]
    if plan.gen_final_variant(config):
        out += [f"{OUT}/figures/samples.png", f"{OUT}/figures/class_histogram.png"]
    return out
