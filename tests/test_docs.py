"""The documentation stays true: the README is a front page, its links resolve, its job counts
are the dry run's, its demo tables are what `make readme` writes, the rule graph is the paper
config's, CITATION.cff is valid CFF 1.2.0, and nothing points outside the repository."""

import csv
import json
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT, run_snakemake

README = ROOT / "README.md"
DOCS = ROOT / "docs"
SCRIPT = ROOT / "scripts" / "readme_tables.py"


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


# ------------------------------------------------------------------------------ the front page
def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move details into docs/"
    long = [(i + 1, len(line)) for i, line in enumerate(lines) if len(line) > 150]
    assert not long, f"README.md lines over 150 characters (line, length): {long}"
    first_screen = "\n".join(lines[:25])
    assert "make demo" in first_screen and "make test" in first_screen
    headings = [line for line in lines if line.startswith("## ")]
    cluster = next(i for i, h in enumerate(headings) if "cluster" in h.lower())
    demo = next(i for i, h in enumerate(headings) if "demo" in h.lower())
    assert cluster < demo, f"the cluster path must come before the demo's numbers: {headings}"
    assert any(h.startswith("## Architecture") for h in headings)
    assert any(h.startswith("## Cite") for h in headings)


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, and a
    repeated heading gets -1, -2, ... (headings inside fenced code blocks are not headings)."""
    out, seen = set(), {}
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for h in re.findall(r"^#+ (.+)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.name)
def test_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target} (no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text(encoding="utf-8")):
            bad.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not bad, f"{page.relative_to(ROOT)}: broken links: {bad}"


def test_long_docs_pages_have_a_contents_list():
    for page in DOCS.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        if len(text.splitlines()) > 80:
            assert "Contents:" in text or "## Contents" in text, (
                f"{page.relative_to(ROOT)} is long and has no contents list"
            )


# ------------------------------------------------------------------------------ job counts
def _job_stats(stdout: str) -> dict[str, int]:
    block = stdout.split("Job stats:", 1)[1]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", block.split("\n\n", 1)[0], re.M)}


def _local_rules() -> set[str]:
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", (ROOT / "Snakefile").read_text(), re.M)
    return {name.strip(" ,") for name in block.group(1).split()}


def _bold_numbers(text: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"\*\*([\d,]+)(?: jobs)?\*\*", text)]


def test_readme_job_counts_are_the_dry_runs(tmp_path):
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- jobs:")
    paragraph = text[start : text.index("\n\n", start)]
    default = _job_stats(run_snakemake("-n", cwd=tmp_path).stdout)
    table1 = _job_stats(run_snakemake("results/tables/table1.csv", "-n", cwd=tmp_path).stdout)
    prefetch = _job_stats(run_snakemake("prefetch", "-n", cwd=tmp_path).stdout)
    local = _local_rules()

    def submitted(stats):
        return stats["total"] - sum(n for rule, n in stats.items() if rule in local)

    def grouped(stats):  # each train + evaluate pair becomes one submission
        assert stats["train"] == stats["evaluate"]
        return submitted(stats) - stats["evaluate"]

    expected = [
        default["total"],
        table1["total"],
        prefetch["total"],
        submitted(default),
        submitted(table1),
        grouped(default),
        grouped(table1),
    ]
    assert _bold_numbers(paragraph) == expected, (
        "README's job counts (all, table1.csv, prefetch, submitted x2, grouped x2) differ from `snakemake -n`"
    )
    assert (
        f"({table1['train']} trainings, {table1['evaluate']} evaluations, {table1['synthetic_set']} synthetic sets"
        in (" ".join(paragraph.split()))
    )


def test_readme_thesis_counts_are_the_dry_runs(tmp_path):
    p = run_snakemake("-n", "--configfile", str(ROOT / "config" / "thesis.yaml"), cwd=tmp_path)
    stats = _job_stats(p.stdout)
    text = " ".join(README.read_text(encoding="utf-8").split())
    sentence = (
        f"{stats['train']} trainings, {stats['paste']} pasted sets and the comparison table, {stats['total']} jobs"
    )
    assert sentence in text


def test_demo_counts_are_the_dry_runs(tmp_path):
    p = run_snakemake("-n", "--configfile", str(ROOT / "config" / "demo.yaml"), cwd=tmp_path)
    stats = _job_stats(p.stdout)
    readme = " ".join(README.read_text(encoding="utf-8").split())
    assert f"{stats['train']} trainings and their evaluations" in readme
    performance = " ".join((DOCS / "performance.md").read_text(encoding="utf-8").split())
    # the 9 generation shards join only once the plans exist: not in the dry run
    shards = 9
    assert (
        f"({stats['total'] + shards} jobs: the {stats['total']} that `snakemake -n --configfile config/demo.yaml` plans"
        in performance
    )
    assert f"{shards} generation shards" in performance


def test_readme_demo_settings_are_the_demo_configs():
    cfg = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    shapes = next(d for d in cfg["datasets"].values() if d["kind"] == "demo")
    readme = " ".join(README.read_text(encoding="utf-8").split())
    assert f"on {shapes['num_train']} generated images" in readme
    assert (
        f"{shapes['num_train']} train / {shapes['num_val']} val images of {shapes['width']}×{shapes['height']}"
        in readme
    )
    assert f"learns little in {cfg['train']['steps']} steps" in readme


# ------------------------------------------------------------------------------ make readme
def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def fake_results(root: Path) -> Path:
    """A results tree with the three tables `make readme` reads, in the columns the workflow writes."""
    t = root / "tables"
    t1 = dict(model="pspnet_r18", split="shapes", seeds="0 1 2", paper_miou="")
    _write_csv(
        t / "table1.csv",
        [
            {**t1, "training_set": "D_origin", "trainset": "origin", "miou_mean": 74.87, "miou_std": 0.66, "delta": ""},
            {
                **t1,
                "training_set": "D_final",
                "trainset": "gen-default",
                "miou_mean": 65.1,
                "miou_std": 3.02,
                "delta": -9.77,
            },
        ],
    )
    (t / "table1.csv.provenance.json").write_text(json.dumps({"code_version": "abc1234"}))
    th = dict(seeds="0 1 2", background="99.00 ± 0.10", road="90.00 ± 1.00")
    _write_csv(
        t / "thesis.csv",
        [
            {
                "method": "baseline",
                "trainset": "origin",
                "loss": "ce",
                "vlm_placed": "",
                **th,
                "car": "67.70 ± 1.76",
                "boat": "60.91 ± 2.27",
                "mIoU": "74.87 ± 0.66",
            },
            {
                "method": "VLM paste",
                "trainset": "paste-vlm",
                "loss": "ce",
                "vlm_placed": "0% (0 of 429 objects)",
                **th,
                "car": "71.10 ± 1.96",
                "boat": "61.84 ± 0.29",
                "mIoU": "75.39 ± 0.37",
            },
        ],
    )
    q = dict(dataset="demo", split="shapes", variant="default", images=49, source_images=48, regenerated_images=0)
    q |= dict(entropy_origin=2.5, entropy_final=2.6, cir_origin=0.3, cir_final=0.35, fid_feature=64)
    _write_csv(
        t / "synthetic_sets.csv",
        [
            {**q, "seed": s, "clip_score_mean": 5.7 + s / 10, "clip_score_std": 0.5, "fid": 19.9 + s / 10}
            for s in range(3)
        ],
    )
    return root


PAGE = """# A page

<!-- readme:demo-source -->
stale
<!-- /readme:demo-source -->

<!-- readme:demo-table1 -->
<!-- /readme:demo-table1 -->

text between

<!-- readme:demo-thesis columns=car,boat -->
| old | table |
<!-- /readme:demo-thesis -->
<!-- readme:demo-synthetic -->
<!-- /readme:demo-synthetic -->
"""


def _readme_tables(*args, check=True):
    cmd = [sys.executable, str(SCRIPT), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_make_readme_writes_the_tables_from_a_results_tree(tmp_path):
    results = fake_results(tmp_path / "results" / "demo")
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    _readme_tables("--results", results, "--machine", "test box, 2 cores", page)
    text = page.read_text()
    assert text.startswith("# A page\n") and "text between" in text and "stale" not in text and "| old |" not in text
    assert "| `pspnet_r18` | D_origin | 0 1 2 | 74.87 ± 0.66 |  |" in text
    assert "| `pspnet_r18` | D_final (`gen-default`) | 0 1 2 | 65.10 ± 3.02 | −9.77 |" in text
    assert "| method | training set, loss | car | boat | mIoU |" in text  # only the columns asked for
    assert (
        "| VLM paste (VLM placed 0% (0 of 429 objects)) | `paste-vlm`, `ce` | 71.10 ± 1.96 | 61.84 ± 0.29 | 75.39 ± 0.37 |"
        in text
    )
    assert "road" not in text
    assert "| shapes | `default` | 2 | 49 (48) | 0 | 5.90 ± 0.50 | 20.10 |" in text
    assert "code `abc1234`" in text and "machine: test box, 2 cores" in text
    # idempotent, and --check agrees; a changed result makes the page stale
    _readme_tables("--results", results, "--machine", "test box, 2 cores", page)
    assert page.read_text() == text
    assert _readme_tables("--check", "--results", results, "--machine", "test box, 2 cores", page).returncode == 0
    t1 = results / "tables" / "table1.csv"
    t1.write_text(t1.read_text().replace("74.87", "74.88"))
    stale = _readme_tables("--check", "--results", results, "--machine", "test box, 2 cores", page, check=False)
    assert stale.returncode == 1 and "page.md" in stale.stderr
    assert page.read_text() == text  # --check writes nothing


def test_make_readme_fails_cleanly(tmp_path):
    results = fake_results(tmp_path / "results")
    (results / "tables" / "thesis.csv").unlink()
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    p = _readme_tables("--results", results, page, check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "thesis.csv: missing" in p.stderr
    assert page.read_text() == PAGE  # nothing half-written
    page.write_text("<!-- readme:demo-table1 -->\nno end\n")
    p = _readme_tables("--results", fake_results(tmp_path / "r2"), page, check=False)
    assert p.returncode == 2 and "has no closing '<!-- /readme:demo-table1 -->'" in p.stderr
    page.write_text("<!-- readme:demo-tabel1 -->\n<!-- /readme:demo-tabel1 -->\n")
    p = _readme_tables("--results", fake_results(tmp_path / "r3"), page, check=False)
    assert p.returncode == 2 and "unknown block 'readme:demo-tabel1'" in p.stderr


def test_readme_blocks_are_filled():
    """Every block `make readme` owns has been filled (run `make readme` after `make demo`)."""
    blocks = 0
    for page in (README, DOCS / "performance.md"):
        text = page.read_text(encoding="utf-8")
        for name, body in re.findall(r"<!-- readme:([a-z0-9-]+)[^>]*-->\n(.*?)<!-- /readme:\1 -->", text, re.S):
            blocks += 1
            assert body.strip(), f"{page.name}: block readme:{name} is empty; run `make readme` after `make demo`"
        assert text.count("<!-- readme:") == text.count("<!-- /readme:"), f"{page.name}: unbalanced readme: markers"
    assert blocks >= 4


# ------------------------------------------------------------------------------ the rule graph
def test_rulegraph_svg_has_the_rules_of_the_paper_config(tmp_path):
    p = run_snakemake("--rulegraph", "--configfile", str(ROOT / "config" / "config.yaml"), cwd=tmp_path)
    rules = set(re.findall(r'\[label = "(\w+)"', p.stdout))
    assert {
        "captions",
        "priors",
        "plan",
        "synthetic_set",
        "class_histogram",
        "figure5",
        "sample_grid",
        "table2",
    } <= rules
    ns = {"svg": "http://www.w3.org/2000/svg"}
    svg = ET.parse(DOCS / "rulegraph.svg").getroot()
    nodes = set()
    for g in svg.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "node":
            nodes |= {t.text for t in g.findall("svg:text", ns)}
    assert nodes == rules, (
        f"docs/rulegraph.svg is stale (missing {sorted(rules - nodes)}, extra {sorted(nodes - rules)}): run `make dag`"
    )


# ------------------------------------------------------------------------------ license and citation
def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_license_is_the_declared_mit():
    assert _pyproject()["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) " in text and "segaug contributors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def _cff_validator():
    schema = json.loads((ROOT / "tests" / "data" / "cff-schema-1.2.0.json").read_text())
    assert schema["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_citation_cff_is_valid_cff_1_2_0():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    validator = _cff_validator()
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(cff)]
    assert not errors, errors
    # the schema check can fail: a file without authors, or a reference without a title, is refused
    assert list(validator.iter_errors({k: v for k, v in cff.items() if k != "authors"}))
    broken = {**cff, "references": [{k: v for k, v in cff["references"][0].items() if k != "title"}]}
    assert list(validator.iter_errors(broken))
    project = _pyproject()
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == project["version"] and cff["license"] == project["license"]["text"]
    titles = " | ".join(r["title"] for r in cff["references"])
    for work in (
        "Enhanced Generative Data Augmentation for Semantic Segmentation via Stronger Guidance",
        "SIGtor",
        "Unreliable Pseudo-Labels",  # U2PL
        "PASCAL Visual Object Classes",
        "ISPRS benchmark",  # Vaihingen
        "SDXL",
        "T2I-Adapter",
        "BLIP-2",
        "Qwen2.5-VL",
    ):
        assert work in titles, f"CITATION.cff has no reference for {work}"
    che = cff["references"][0]
    assert che["authors"][0]["family-names"] == "Che" and che["year"] == 2025


# ------------------------------------------------------------------------------ nothing outside
# Patterns are split so this file does not match itself.
OUTSIDE = [
    re.compile(r"\.\./" + "shared"),
    re.compile("shared" + r"/(SPEC|DESIGN)\.md"),
    re.compile(r"\b" + "issue" + r"s? ?#?\d+\b", re.I),
    re.compile(r"\b" + "seed" + r"s?[ /]0\d\d\b", re.I),
]
CHECKED = ["README.md", "CITATION.cff", "Snakefile", "Makefile", "pyproject.toml"]
CHECKED_DIRS = ["docs", "src", "scripts", "rules", "config", "profiles", "envs", "benchmarks", "tests"]


def test_nothing_points_outside_the_repository():
    files = [ROOT / f for f in CHECKED]
    for d in CHECKED_DIRS:
        files += [
            p
            for p in (ROOT / d).rglob("*")
            if p.is_file() and not any(part == "__pycache__" or part.endswith(".egg-info") for part in p.parts)
        ]
    files = [p for p in files if p != Path(__file__).resolve() and p.suffix not in {".svg", ".png", ".json", ".pyc"}]
    hits = []
    for p in files:
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            hits += [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for rx in OUTSIDE if rx.search(line)]
    assert not hits, "say what a thing is instead of pointing at developer notes:\n" + "\n".join(hits)
