#!/usr/bin/env python
"""Write the demo's numbers into README.md and docs/ from a results directory (`make readme`).

Numbers in the documentation are not typed by hand: each table sits between two markers, and
this script rewrites what is between them from the CSV tables of a finished run:

    <!-- readme:demo-table1 -->
    ...written by this script...
    <!-- /readme:demo-table1 -->

Blocks (the opening marker may carry options, ``key=value`` separated by spaces):

- ``demo-table1``: Table 1 (``tables/table1.csv``): model, training set, seeds, mIoU mean ± std, delta;
- ``demo-thesis``: the thesis table (``tables/thesis.csv``); ``columns=car,boat`` picks the
  per-class columns shown (default: all), mIoU is always last;
- ``demo-synthetic``: the synthetic sets (``tables/synthetic_sets.csv``): size, regenerations,
  CLIP score, FID;
- ``demo-source``: one line naming the results directory, the code version of the tables (their
  provenance sidecar), the date the tables were written and the machine (``--machine``; default:
  this machine's CPU model and core count, so run it where the demo ran).

    python scripts/readme_tables.py --results results/demo README.md docs/performance.md
    python scripts/readme_tables.py --results results/demo --check README.md   # exit 1 if stale

Standard library only. A missing table or a block without its closing marker is one error line
naming the file; nothing is written then.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path

BLOCK = re.compile(
    r"(?P<open><!-- readme:(?P<name>[a-z0-9-]+)(?P<opts>(?: +[a-z_]+=[^ >]+)*) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- /readme:(?P=name) -->)",
    re.S,
)
OPENING = re.compile(r"<!-- readme:([a-z0-9-]+)")


class ReadmeError(Exception):
    pass


def read_csv(results: Path, name: str) -> list[dict]:
    path = results / "tables" / name
    if not path.is_file():
        raise ReadmeError(f"{path}: missing; run the workflow for {results} first (e.g. `make demo`)")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ReadmeError(f"{path}: no rows")
    return rows


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _num(value: str, signed: bool = False) -> str:
    if value in ("", None):
        return ""
    x = float(value)
    return f"{x:+.2f}".replace("-", "−") if signed else f"{x:.2f}"


def block_table1(results: Path, opts: dict) -> str:
    rows = read_csv(results, "table1.csv")
    splits = list(dict.fromkeys(r["split"] for r in rows))
    header = ["model", *(["split"] if len(splits) > 1 else []), "training set", "seeds", "mIoU % (mean ± std)", "delta"]
    out = []
    for r in rows:
        label = r["training_set"] if r["trainset"] == "origin" else f"{r['training_set']} (`{r['trainset']}`)"
        cells = [f"`{r['model']}`", *([r["split"]] if len(splits) > 1 else []), label, r["seeds"]]
        out.append([*cells, f"{_num(r['miou_mean'])} ± {_num(r['miou_std'])}", _num(r["delta"], signed=True)])
    return md_table(header, out)


def block_thesis(results: Path, opts: dict) -> str:
    rows = read_csv(results, "thesis.csv")
    fixed = {"method", "trainset", "loss", "seeds", "vlm_placed", "mIoU"}
    classes = [c for c in rows[0] if c not in fixed]
    if "columns" in opts:
        wanted = opts["columns"].split(",")
        unknown = [c for c in wanted if c not in classes]
        if unknown:
            raise ReadmeError(f"demo-thesis columns={opts['columns']}: {unknown} not in thesis.csv ({classes})")
        classes = wanted
    header = ["method", "training set, loss", *classes, "mIoU"]
    out = []
    for r in rows:
        method = r["method"]
        if r.get("vlm_placed"):
            method += f" (VLM placed {r['vlm_placed']})"
        out.append([method, f"`{r['trainset']}`, `{r['loss']}`", *(r[c] for c in classes), r["mIoU"]])
    return md_table(header, out)


def block_synthetic(results: Path, opts: dict) -> str:
    rows = read_csv(results, "synthetic_sets.csv")
    header = ["split", "variant", "seed", "images (from)", "regenerated", "CLIP score", "FID"]
    out = [
        [
            r["split"],
            f"`{r['variant']}`",
            r["seed"],
            f"{r['images']} ({r['source_images']})",
            r["regenerated_images"],
            f"{_num(r['clip_score_mean'])} ± {_num(r['clip_score_std'])}",
            _num(r["fid"]),
        ]
        for r in rows
    ]
    return md_table(header, out)


def this_machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or 'unknown CPU'}, {os.cpu_count()} cores"


def block_source(results: Path, opts: dict, machine: str) -> str:
    table = results / "tables" / "table1.csv"
    read_csv(results, "table1.csv")
    sidecar = table.with_name(table.name + ".provenance.json")
    try:
        code = json.loads(sidecar.read_text())["code_version"]
    except (OSError, ValueError, KeyError):
        code = "unknown (no provenance sidecar)"
    day = dt.datetime.fromtimestamp(table.stat().st_mtime, dt.UTC).strftime("%Y-%m-%d")
    return (
        f"Filled in by `make readme` from `{results.as_posix()}/tables/`\n"
        f"(code `{code}`, tables written {day}, machine: {machine}).\n"
    )


def render(text: str, results: Path, machine: str, where: str) -> str:
    makers = {
        "demo-table1": block_table1,
        "demo-thesis": block_thesis,
        "demo-synthetic": block_synthetic,
        "demo-source": lambda r, o: block_source(r, o, machine),
    }
    found = {m.group("name") for m in BLOCK.finditer(text)}
    for name in OPENING.findall(text):
        if name not in makers:
            raise ReadmeError(f"{where}: unknown block 'readme:{name}' (known: {', '.join(makers)})")
        if name not in found:
            raise ReadmeError(f"{where}: block 'readme:{name}' has no closing '<!-- /readme:{name} -->'")

    def fill(m: re.Match) -> str:
        opts = dict(kv.split("=", 1) for kv in m.group("opts").split())
        return m.group("open") + makers[m.group("name")](results, opts) + m.group("close")

    return BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", required=True, type=Path, help="a finished run's outdir, e.g. results/demo")
    ap.add_argument("--machine", default=None, help="where the results were made (default: this machine)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    ap.add_argument("files", nargs="+", type=Path, help="Markdown files with readme: blocks")
    args = ap.parse_args(argv)
    machine = args.machine or this_machine()
    try:
        new = {}
        for path in args.files:
            text = path.read_text(encoding="utf-8")
            new[path] = (text, render(text, args.results, machine, str(path)))
    except (ReadmeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stale = [p for p, (old, text) in new.items() if old != text]
    if args.check:
        for p in stale:
            print(f"{p}: its readme: blocks differ from {args.results}; run `make readme`", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(new[p][1], encoding="utf-8")
        tmp.replace(p)
        print(f"updated {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
