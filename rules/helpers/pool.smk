# Input functions and argument builders of rules/pool.smk (the crop stage).


def pool_args():
    p = config["pool"]
    args = [
        f"--min-area {p.get('min_area', 100)}",
        f"--max-fraction {p.get('max_fraction', 0.05)}",
    ]
    if p.get("classes"):
        args.append("--classes " + " ".join(shlex.quote(c) for c in p["classes"]))
    if p.get("drop_border", True):
        args.append("--drop-border")
    return " ".join(args)
