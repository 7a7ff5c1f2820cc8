"""The workflow itself: config validation, the planned DAG, and a real demo run."""

import csv
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_snakemake, snakemake_bin

pytestmark = pytest.mark.workflow  # every test here runs Snakemake

PAPER_SPLITS = 6
PAPER_MODELS = 3  # DeepLabV3+, PSPNet, Mask2Former (R50)
TRAINSETS = 2  # D_origin, D_final
SEEDS = 3


def job_counts(stdout: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table."""
    counts, in_table = {}, False
    for line in stdout.splitlines():
        if line.startswith("Job stats"):
            in_table = True
            continue
        if in_table:
            m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
            if m:
                counts[m.group(1)] = int(m.group(2))
            elif counts and not line.strip():
                break
    return counts


def planned_jobs(stdout: str) -> list[tuple[str, str]]:
    """(rule, wildcards/output text) for every job in a dry run printout."""
    jobs, rule = [], None
    for line in stdout.splitlines():
        m = re.match(r"^(?:localrule|rule) (\w+):", line)
        if m:
            rule = m.group(1)
            continue
        if rule and line.strip().startswith("output:"):
            jobs.append((rule, line.strip()))
            rule = None
    return jobs


def test_paper_config_plans_full_table1(tmp_path):
    p = run_snakemake("-n", cwd=tmp_path)
    counts = job_counts(p.stdout)
    assert counts["train"] == PAPER_MODELS * PAPER_SPLITS * TRAINSETS * SEEDS == 108
    assert counts["evaluate"] == 108
    # D_final = D_gen + D_origin: a synthetic set per split and seed, from per-split captions,
    # line-art priors and an Algorithm 1 plan (the generate shards appear once plans exist)
    assert counts["synthetic_set"] == counts["gen_quality"] == PAPER_SPLITS * SEEDS
    assert counts["captions"] == counts["priors"] == counts["plan"] == PAPER_SPLITS
    assert "paste" not in counts and "pool" not in counts
    assert counts["download_dataset"] == 2 and counts["download_list"] == 6
    assert counts["table1"] == 1 and counts["synthetic_sets_table"] == 1


def test_thesis_config_plans_the_comparison(tmp_path):
    """config/thesis.yaml (Vaihingen, user path): 7 methods x 3 seeds, 4 pasted sets per seed."""
    p = run_snakemake("-n", "-p", "--configfile", str(ROOT / "config" / "thesis.yaml"), cwd=tmp_path)
    counts = job_counts(p.stdout)
    assert counts["train"] == counts["evaluate"] == 7 * SEEDS
    assert counts["paste"] == 4 * SEEDS and counts["thesis_table"] == 1
    # the dataset's config block reaches its kind's prepare() as one JSON argument
    assert '"kind": "vaihingen", "patch_size": 512, "path": "/data/ISPRS/Vaihingen", "stride": 512' in p.stdout
    assert "GEMINI_API_KEY" in p.stdout and "--method vlm" in p.stdout


def test_ablation_tables_3_to_7_are_in_the_dag(tmp_path):
    """Tables 3-7: DeepLabV3+ R50 on VOC7, one training per row and seed (Table 7: 5 x 4 grid)."""
    rows = {"table3": 7, "table4": 5, "table5": 3, "table6": 5, "table7": 20}
    for table, n in rows.items():
        p = run_snakemake(f"results/tables/{table}.csv", "-n", cwd=tmp_path)
        counts = job_counts(p.stdout)
        assert counts["ablation_table"] == 1
        assert counts["train"] == n * SEEDS, (table, counts)
        assert counts["synthetic_set"] == (n - (table in ("table3", "table4"))) * SEEDS, (table, counts)
    p = run_snakemake("results/tables/table7.csv", "-n", cwd=tmp_path)
    assert "gen/default_w1-0.6_w2-0.7/seed0/set" in p.stdout
    # the plans Table 4 compares: n_balance 27/41/55/69 and auto (for D_origin's statistics)
    p = run_snakemake("results/tables/table4.csv", "-n", cwd=tmp_path)
    plans = set(re.findall(r"gen/plans/(balance-\w+)\.json", p.stdout))
    assert plans == {"balance-auto", "balance-27", "balance-41", "balance-55", "balance-69"}


def test_every_seed_dependent_path_has_the_seed(tmp_path):
    p = run_snakemake("-n", cwd=tmp_path)
    for rule, out in planned_jobs(p.stdout):
        has_seed = re.search(r"/seed\d+(/|\.|$)", out) is not None
        seeded = {"paste", "generate", "synthetic_set", "gen_quality", "train", "evaluate", "seed_metrics"}
        assert has_seed == (rule in seeded), (rule, out)


DELETE = object()  # write_config(..., **{"thesis": DELETE}) removes a key


def write_config(tmp_path, **updates) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    for key, value in updates.items():
        node = cfg
        *parents, last = key.split(".")
        for k in parents:
            node = node[k]
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("train.stepz", 3, "unknown key 'train.stepz'"),
        ("pool.classes", ["car", "cat"], "unknown class 'cat'"),
        ("table1.models", ["nope"], "key 'table1.models': unknown model 'nope'"),
        ("train.steps", "many", "key 'train.steps'"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, key, value, message):
    cfg = write_config(tmp_path, **{key: value})
    p = run_snakemake("-n", "--configfile", str(cfg), cwd=tmp_path, check=False)
    assert p.returncode != 0
    assert message in p.stderr + p.stdout


TINY = {
    "datasets.shapes.num_train": 12,
    "datasets.shapes.num_val": 6,
    "datasets.shapes.width": 96,
    "datasets.shapes.height": 72,
    "seeds": [0, 1],
    "train.steps": 4,
    "train.val_interval": 2,
    "train.batch_size": 4,
    "train.crop_size": [64, 64],
    "train.base_size": [96, 72],
    "table1.models": ["pspnet_r18", "mask2former_tiny"],
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo workflow for real, on a tiny setting: data -> pool -> paste -> train -> Table 1."""
    tmp = tmp_path_factory.mktemp("demo")
    cfg = write_config(tmp, **TINY)
    run_snakemake("--cores", "2", "--configfile", str(cfg), cwd=tmp)
    return tmp, cfg


@pytest.mark.workflow
def test_demo_run_builds_table1(demo_run):
    tmp, _ = demo_run
    out = tmp / "results" / "demo"
    rows = list(csv.DictReader(open(out / "tables" / "table1.csv")))
    assert [(r["model"], r["split"], r["training_set"]) for r in rows] == [
        ("pspnet_r18", "full", "D_origin"),
        ("pspnet_r18", "full", "D_final"),
        ("mask2former_tiny", "full", "D_origin"),
        ("mask2former_tiny", "full", "D_final"),
    ]
    for r in rows:
        assert r["seeds"] == "0 1"
        assert 0.0 <= float(r["miou_mean"]) <= 100.0
    assert (out / "tables" / "table1.md").read_text().startswith("# Table 1")
    # every seed-dependent artifact carries its seed; logs exist for every job
    for seed in (0, 1):
        m = json.loads((out / f"shapes/full/eval/pspnet_r18/gen-default/ce/seed{seed}/metrics.json").read_text())
        assert m["run"]["seed"] == seed and len(m["iou"]) == 7
    assert list((out / "logs" / "train").rglob("*.log"))


@pytest.mark.workflow
def test_demo_generative_branch(demo_run):
    """Captions, priors, Algorithm 1, tiny SDXL + T2I-Adapter shards, the synthetic set and its
    quality: every image paired with its source label, reproducible per seed."""
    tmp, _ = demo_run
    out = tmp / "results" / "demo" / "shapes" / "full" / "gen"
    captions = json.loads((out / "captions.json").read_text())
    ids = (tmp / "results/demo/shapes/full/splits/train.txt").read_text().split()
    assert sorted(captions) == sorted(ids)
    plan = json.loads((out / "plans" / "balance-auto.json").read_text())
    assert abs(plan["num_generated"] - plan["num_origin"]) <= plan["num_origin"] // 2
    assert sorted(p.name for p in (out / "priors" / "lineart" / "image").iterdir()) == sorted(f"{i}.png" for i in ids)
    sets = {}
    for seed in (0, 1):
        d = out / "default" / f"seed{seed}" / "set"
        listed = (d / "sets" / "all.txt").read_text().split()
        assert listed == [f"{e['source']}_g{e['copy']}" for e in plan["entries"]]
        manifest = [json.loads(line) for line in (d / "manifest.jsonl").read_text().splitlines()]
        assert [m["output_id"] for m in manifest] == listed
        m0 = manifest[0]
        names = m0["prompt"].split("; ")[-1].split(", ")
        assert m0["prompt"].startswith(captions[m0["source_id"]].strip()[:3]) and names  # appended
        from PIL import Image

        for oid in listed[:3]:
            src = (tmp / "results/demo/shapes/dataset/labels" / f"{oid.rsplit('_g', 1)[0]}.png").read_bytes()
            assert (d / "labels" / f"{oid}.png").read_bytes() == src
            im, lab = Image.open(d / "images" / f"{oid}.png"), Image.open(d / "labels" / f"{oid}.png")
            assert im.size == lab.size and im.mode == "RGB"
        sets[seed] = (d / "images" / f"{listed[0]}.png").read_bytes()
        q = json.loads((out / "default" / f"seed{seed}" / "quality.json").read_text())
        assert q["images"] == len(listed) and 0 <= q["clip_score_mean"] <= 100 and q["fid"] >= 0
    assert sets[0] != sets[1]  # the seed is in the generation seeds
    rows = list(csv.DictReader(open(tmp / "results/demo/tables/synthetic_sets.csv")))
    assert [(r["variant"], r["seed"]) for r in rows] == [("default", "0"), ("default", "1")]


@pytest.mark.workflow
def test_demo_thesis_table(demo_run):
    """Random, context, VLM (tiny local Qwen2.5-VL: its answers never parse, so every object
    falls back to the surface rule, counted) and SIGtor paste, focal loss and class weighting:
    the thesis table, its bar figure and the pasted examples."""
    tmp, cfg = demo_run
    out = tmp / "results" / "demo"
    rows = list(csv.DictReader(open(out / "tables" / "thesis.csv")))
    assert [r["method"] for r in rows] == [
        "baseline",
        "random paste",
        "context paste",
        "VLM paste",
        "SIGtor packing",
        "focal loss",
        "class weighting",
        "generative",
    ]
    assert [(r["trainset"], r["loss"]) for r in rows][5:7] == [("origin", "focal"), ("origin", "weighted_ce")]
    for r in rows:
        assert r["seeds"] == "0 1" and re.fullmatch(r"\d+\.\d\d ± \d+\.\d\d", r["mIoU"]), r
        assert {"car", "boat", "road"} <= set(r)
    for fig in ("thesis_iou.png", "paste_examples.png"):
        assert (out / "figures" / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    paste = out / "shapes/full/paste"
    ctx = json.loads((paste / "context/seed0/summary.json").read_text())
    assert ctx["pastes"] > 0 and set(ctx["reasons"]) == {"surface"}
    vlm = json.loads((paste / "vlm/seed0/summary.json").read_text())
    stats = vlm["placer_stats"]
    assert stats["vlm_accepted"] == 0 and stats["fallback"] == stats["requests"] > 0
    assert set(vlm["reasons"]) == {"fallback (vlm: parse error)"}
    assert stats["vlm_share"] == 0  # kept only because the demo sets vlm.allow_all_fallback
    vlm_row = rows[[r["method"] for r in rows].index("VLM paste")]
    assert vlm_row["vlm_placed"].startswith("0% (0 of ") and rows[0]["vlm_placed"] == ""
    sig = [json.loads(x) for x in (paste / "sigtor/seed0/manifest.jsonl").read_text().splitlines()]
    assert sig and all(m["blend"] == "poisson" for m in sig)
    # a rerun of the VLM paste asks the model nothing: every answer comes from the cache
    target = "results/demo/shapes/full/paste/vlm/seed0"
    run_snakemake(target, "--cores", "1", "--configfile", str(cfg), "--forcerun", "paste", cwd=tmp)
    again = json.loads((paste / "vlm/seed0/summary.json").read_text())["placer_stats"]
    assert again["requests"] == 0 and again["cache_hits"] == stats["requests"]


@pytest.mark.workflow
@pytest.mark.parametrize("source", ["clipseg", "sam_clip"])
def test_open_vocabulary_surfaces_feed_context_paste(tmp_path, source):
    """A surface the labels lack ("pavement") comes from open-vocabulary maps (tiny CLIPSeg, or
    tiny SAM 2 + CLIP), built once per split by the `surfaces` rule and read by context paste."""
    surfaces = {
        "source": source,
        "names": ["road", "water", "pavement"],
        "model": f"results/demo/tiny/{'clipseg' if source == 'clipseg' else 'sam'}",
    }
    if source == "sam_clip":
        surfaces["clip_model"] = "results/demo/tiny/clip"
    cfg = write_config(
        tmp_path,
        **{**TINY, "seeds": [0], "context.surfaces": surfaces, "context.rules.car.surfaces": ["road", "pavement"]},
    )
    target = "results/demo/shapes/full/paste/context/seed0"
    run_snakemake(target, "--cores", "2", "--configfile", str(cfg), cwd=tmp_path)
    maps = tmp_path / "results/demo/shapes/full/surfaces"
    ids = (tmp_path / "results/demo/shapes/full/splits/train.txt").read_text().split()
    assert sorted(p.name for p in maps.glob("*.png")) == sorted(f"{i}.png" for i in ids)
    assert json.loads((maps / f"{ids[0]}.json").read_text())["names"] == ["pavement"]
    summary = json.loads((tmp_path / target / "summary.json").read_text())
    assert summary["pastes"] > 0


@pytest.mark.workflow
def test_demo_tables_figures_provenance_and_report(demo_run):
    """Table 1 and 2 in CSV / Markdown / LaTeX, Figure 5, the sample grid and class histogram,
    each with a provenance sidecar; `snakemake --report` gathers them into one HTML file."""
    tmp, cfg = demo_run
    out = tmp / "results" / "demo"
    tex = (out / "tables" / "table1.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "D\\_origin" in tex
    rows = list(csv.DictReader(open(out / "tables" / "table2.csv")))
    assert [r["class"] for r in rows] == ["grass", "road", "water", "building", "tree", "car", "boat", "mIoU"]
    assert (out / "tables" / "table2.tex").read_text().count("\\\\") >= 8
    figures = ["figure5.png", "samples.png", "class_histogram.png", "table2_iou.png", "thesis_iou.png"]
    for name in figures:
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG", name
    cfg_hash = None
    for artifact in [
        "tables/table1.csv",
        "tables/table2.csv",
        "tables/thesis.csv",
        "figures/figure5.png",
        "figures/samples.png",
        "tables/synthetic_sets.csv",
    ]:
        prov = json.loads((out / f"{artifact}.provenance.json").read_text())
        assert {"config_sha256", "code_version", "packages", "seeds", "model_ids"} <= set(prov), artifact
        assert prov["packages"]["torch"] and prov["model_ids"]["segmentation"]["pspnet_r18"]["arch"] == "PSPNet"
        cfg_hash = cfg_hash or prov["config_sha256"]
        assert prov["config_sha256"] == cfg_hash  # one config made them all
    report = tmp / "report.html"
    run_snakemake("--report", str(report), "--configfile", str(cfg), cwd=tmp)
    html = report.read_text(errors="replace")
    for name in [
        "table1.csv",
        "table2.csv",
        "thesis.csv",
        "figure5.png",
        "samples.png",
        "class_histogram.png",
        "paste_examples.png",
        "synthetic_sets.csv",
    ]:
        assert name in html, name


@pytest.mark.workflow
def test_rerun_one_seed_plans_exactly_that_seed(demo_run):
    tmp, cfg = demo_run
    target = "results/demo/tables/seeds/seed1.csv"
    run_snakemake(target, "--cores", "1", "--configfile", str(cfg), cwd=tmp)
    p = run_snakemake(
        target,
        "-n",
        "--configfile",
        str(cfg),
        "--forcerun",
        "paste",
        "generate",
        "synthetic_set",
        "train",
        "evaluate",
        "seed_metrics",
        cwd=tmp,
    )
    jobs = planned_jobs(p.stdout)
    rules = sorted(r for r, _ in jobs)
    # one synthetic set (the D_final of seed 1, one shard), 4 trainings and 4 evaluations
    # (2 models x D_origin / D_final)
    assert rules == ["evaluate"] * 4 + ["generate", "seed_metrics", "synthetic_set"] + ["train"] * 4, jobs
    assert all("seed1" in out for _, out in jobs), jobs


def test_prefetch_plans_every_download_on_the_submit_host(tmp_path):
    """Compute nodes may have no internet: `prefetch` does every download as a localrule, and
    `snakemake -n` on the paper config shows what is still missing."""
    p = run_snakemake("prefetch", "-n", cwd=tmp_path)
    counts = job_counts(p.stdout)
    # 10 hub repos: BLIP-2, annotators, CLIP, SDXL base, VAE, 3 adapters, ControlNet, inpainting
    assert counts == {
        "download_dataset": 2,
        "download_list": 6,
        "prefetch_weights": 3,
        "prefetch_hub": 10,
        "prefetch_inception": 1,
        "prefetch": 1,
        "total": 23,
    }
    assert "hub/TencentARC--t2i-adapter-lineart-sdxl-1.0.ready" in p.stdout
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", (ROOT / "Snakefile").read_text(), re.M)
    local = {name.strip(" ,") for name in block.group(1).split()}
    assert {
        "download_dataset",
        "download_list",
        "prefetch_weights",
        "prefetch_hub",
        "prefetch_inception",
        "prefetch",
    } <= local
    p = run_snakemake("-n", "-p", cwd=tmp_path)
    for script in ("train", "captions", "priors", "gen_quality"):
        cmds = [line for line in p.stdout.splitlines() if f"scripts/{script}.py" in line]
        assert cmds and all("HF_HUB_OFFLINE=1" in c and "HF_HOME=resources/huggingface" in c for c in cmds), script


def test_mask2former_gets_its_own_recipe(tmp_path):
    """The third model of Table 1: its `train` block overrides the SGD recipe, and its backbone
    weights are prefetched like the smp encoders'."""
    p = run_snakemake("-n", "-p", cwd=tmp_path)
    cmds = [line for line in p.stdout.splitlines() if "scripts/train.py" in line and "mask2former_r50" in line]
    assert cmds
    for c in cmds:
        train = json.loads(re.search(r"--train-json '([^']+)'", c).group(1))
        model = json.loads(re.search(r"--model-json '([^']+)'", c).group(1))
        assert (train["optimizer"], train["lr"], train["weight_decay"], train["grad_clip"]) == (
            "adamw",
            0.0001,
            0.05,
            0.01,
        )
        assert train["backbone_lr_mult"] == 0.1 and train["steps"] == 30000 and "train" not in model
    smp = [line for line in p.stdout.splitlines() if "scripts/train.py" in line and "pspnet_r50" in line]
    assert '"optimizer"' not in smp[0]
    assert "prefetch_weights/mask2former_r50.log" in run_snakemake("prefetch", "-n", cwd=tmp_path).stdout


def test_dag_and_rulegraph_render(tmp_path):
    """`--rulegraph` of the paper config and `--dag` of one split are valid Graphviz input."""
    # (Mask2Former trains with its own recipe: AdamW, backbone lr x 0.1, clipping; see below)
    rg = run_snakemake("--rulegraph", cwd=tmp_path).stdout
    assert rg.lstrip().startswith("digraph") and "train" in rg and "table1" in rg
    target = "results/voc2007/voc7/eval/deeplabv3plus_r50/origin/ce/seed0/metrics.json"
    dag = run_snakemake(target, "--dag", cwd=tmp_path).stdout
    assert dag.lstrip().startswith("digraph")
    assert dag.count('label = "train') == 1 and "voc12" not in dag


def test_bare_profile_name_after_install_profile(tmp_path):
    """`make install-profile` makes the literal `snakemake --profile slurm ...` resolve."""
    home = tmp_path / "home"
    subprocess.run(["make", "-s", "-C", str(ROOT), "install-profile", f"HOME={home}"], check=True, capture_output=True)
    assert (home / ".config/snakemake/slurm").resolve() == ROOT / "profiles" / "slurm"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "SNAKEMAKE_SLURM_ACCOUNT": "acc"}
    cmd = [
        snakemake_bin(),
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "results/tables/table1.csv",
        "--profile",
        "slurm",
        "-n",
        "--sdm",
        "env-modules",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Using profile slurm" in p.stdout + p.stderr
    assert job_counts(p.stdout)["train"] == 108
