"""The cost sheet of a config before its first job: jobs, GPU-hours, CPU-hours, peak GPU memory
and disk, per rule family and in total, each figure with its source.

The job list is Snakemake's own: :func:`dry_run_jobs` runs ``snakemake -n`` (nothing runs) and
reads every planned job with its rule and wildcards, and checks the count against the dry run's
"Job stats" table. Generation shards are known only once the plans (a checkpoint) exist; until
then their number is predicted from the split size and the variant's plan (marked "predicted").

Each job then gets a cost from a per-job model: steps x s/step for a training, images x s/image
for evaluation, generation, captions, priors, pasting, conversion, VLM calls. The figures come
from, in this order: a calibration made on the user's GPU (``segaug calibrate`` / ``make
calibrate``, a JSON file), else the defaults in ``estimate_costs.yaml`` (published, derived,
benchmark or assumed, each with its source). The sheet prints the source of every figure.

The library never imports Snakemake: the dry run is a subprocess.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from segaug.errors import SegaugError

DEFAULTS = Path(__file__).with_name("estimate_costs.yaml")


# ------------------------------------------------------------------ the dry run
@dataclass
class Job:
    rule: str
    wildcards: dict
    local: bool = False
    output: str = ""
    predicted: bool = False  # not in the dry run: a generation shard of a plan not made yet


_HEADER = re.compile(r"^(local)?(rule|checkpoint) ([A-Za-z0-9_]+):\s*$")


def parse_dry_run(text: str) -> tuple[list[Job], dict[str, int]]:
    """Jobs (rule, wildcards) and the "Job stats" counts of ``snakemake -n`` output."""
    stats: dict[str, int] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Job stats:":
            for row in lines[i + 3 :]:
                parts = row.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    break
                stats[parts[0]] = int(parts[1])
            break
    jobs: dict[str, Job] = {}
    cur, cur_id = None, None
    for line in lines:
        m = _HEADER.match(line)
        if m:
            cur, cur_id = Job(m.group(3), {}, local=bool(m.group(1))), None
            continue
        if cur is None:
            continue
        s = line.strip()
        if s.startswith("jobid:"):
            cur_id = s.split(":", 1)[1].strip()
            jobs.setdefault(cur_id, cur)
        elif s.startswith("wildcards:"):
            cur.wildcards = dict(kv.split("=", 1) for kv in s.split(":", 1)[1].strip().split(", ") if "=" in kv)
        elif s.startswith("output:"):
            cur.output = s.split(":", 1)[1].strip()
        elif not s or s.startswith("["):
            cur = None
    return list(jobs.values()), stats


def dry_run_jobs(configfile: str | Path, targets=(), forceall: bool = False, snakefile: str | None = None):
    """Run ``snakemake -n`` and return (jobs, job stats); a failed dry run is a SegaugError."""
    if not Path(snakefile or "Snakefile").exists():
        raise SegaugError(
            f"no {snakefile or 'Snakefile'} in {Path.cwd()}: run `segaug estimate` in the repository root"
        )
    # targets first: --configfile takes every word after it
    cmd = [sys.executable, "-m", "snakemake", "-n", *targets, "--configfile", str(configfile)]
    if snakefile:
        cmd += ["--snakefile", snakefile]
    if forceall:
        cmd.append("-F")
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = p.stdout + "\n" + p.stderr
    if p.returncode:
        err = [ln for ln in out.splitlines() if ln.strip()][-5:]
        raise SegaugError(f"the dry run `{' '.join(cmd[2:])}` failed: " + " | ".join(err))
    jobs, stats = parse_dry_run(out)
    if "Nothing to be done" in out and not jobs:
        return [], {}
    counts = defaultdict(int)
    for j in jobs:
        counts[j.rule] += 1
    if stats and dict(counts) != {k: v for k, v in stats.items() if k != "total"}:
        raise SegaugError(
            f"could not read the dry run's job list: {dict(counts)} read, the dry run's Job stats say {stats}"
        )
    return jobs, stats


# ------------------------------------------------------------------ figures
@dataclass
class Figures:
    """Cost figures: the defaults, with a calibration over them."""

    defaults: dict
    calibration: dict | None = None
    gpu: str = "A100"
    used: dict = field(default_factory=dict)  # source key -> text, in first-use order
    lines: dict = field(default_factory=dict)  # figure -> "value  source", as printed

    def figure(self, name: str, text: str, refs) -> None:
        self.lines.setdefault(name, f"{text}  {' '.join(sorted(set(refs) - {''}))}")

    @classmethod
    def load(cls, calibration: str | Path | None = None, gpu: str | None = None, defaults: str | Path | None = None):
        d = yaml.safe_load(Path(defaults or DEFAULTS).read_text())
        cal = None
        if calibration and Path(calibration).exists():
            try:
                cal = json.loads(Path(calibration).read_text())
            except json.JSONDecodeError as e:
                raise SegaugError(f"{calibration}: not a calibration file ({e}); run `make calibrate` again") from None
        gpu = gpu or d["gpu"]["default"]
        if gpu not in d["gpu"]["factor"]:
            raise SegaugError(f"--gpu {gpu}: known GPU types are {', '.join(d['gpu']['factor'])}")
        return cls(d, cal, gpu)

    def cite(self, key: str) -> str:
        """A source's reference number on the sheet (registered on first use)."""
        if key not in self.used:
            if key.startswith("calibration"):
                c = self.calibration or {}
                self.used[key] = (
                    "calibration",
                    f"`segaug calibrate` on {c.get('device_name', '?')} ({c.get('device', '?')}), "
                    f"{c.get('date', '?')}, {c.get('host', '?')}" + (" -- tiny models" if c.get("tiny") else ""),
                    c.get("path", ""),
                )
            else:
                s = self.defaults["sources"][key]
                self.used[key] = (s["kind"], s["text"], s.get("url", ""))
        return f"[{list(self.used).index(key) + 1}]"

    @property
    def on_cpu(self) -> bool:
        """A calibration made on the CPU: the "GPU" jobs ran there, with no GPU memory."""
        return bool(self.calibration) and self.calibration.get("device") == "cpu"

    @property
    def factor(self) -> float:
        return float(self.defaults["gpu"]["factor"][self.gpu])

    def gpu_factor_ref(self) -> str:
        return self.cite(self.defaults["gpu"]["factor_source"]) if self.gpu != "A100" else ""

    def train(self, model: str, arch: str) -> dict:
        """{s_per_step, gpu_mem_gb, s_per_val_image, params_m, batch, crop, refs} for a model."""
        c = ((self.calibration or {}).get("train") or {}).get(model)
        if c:
            c = {**c, "device": (self.calibration or {}).get("device", "cuda")}
        t = self.defaults["train"]
        d = t.get(arch, t["default"])
        if c and c.get("s_per_step"):
            ref = self.cite("calibration")
            self.figure(
                f"train {model}",
                f"{c['s_per_step']:.3g} s/step at batch {c['batch_size']}, crop {c['crop_size']}; "
                f"{c.get('s_per_val_image') or d['s_per_val_image']:.3g} s per val image; "
                f"peak {c.get('gpu_mem_gb') or 0:.3g} GB",
                [ref],
            )
            return {
                "s_per_step": c["s_per_step"],
                # a CPU calibration has no GPU memory to report
                "gpu_mem_gb": c.get("gpu_mem_gb") or (d["gpu_mem_gb"] if c.get("device", "cuda") == "cuda" else 0.0),
                "s_per_val_image": c.get("s_per_val_image") or d["s_per_val_image"],
                "params_m": c.get("params_m") or d["params_m"],
                "batch": c["batch_size"],
                "crop": c["crop_size"],
                "refs": {ref},
                "scale": 1.0,
            }
        refs = [self.cite(d["step_source"]), self.cite(d["mem_source"]), self.cite(d["val_source"])]
        self.figure(
            f"train {arch or model}",
            f"{d['s_per_step']:.3g} s/step at batch 16, crop 512x512 on A100; {d['s_per_val_image']:.3g} s per val "
            f"image; peak {d['gpu_mem_gb']:.3g} GB ({d.get('how', '')})",
            refs,
        )
        return {
            **d,
            "batch": 16,
            "crop": [512, 512],
            "refs": {self.cite(d["step_source"]), self.cite(d["mem_source"]), self.cite(d["val_source"])}
            | ({self.gpu_factor_ref()} - {""}),
            "scale": self.factor,
        }

    def generate(self, generator: str) -> dict:
        c = ((self.calibration or {}).get("generate") or {}).get(generator)
        g = self.defaults["generate"]
        if c and c.get("s_per_image"):
            self.figure(
                f"generate {generator}",
                f"{c['s_per_image']:.3g} s/image at {c['steps']} steps, {c['resolution']} px; "
                f"load {c.get('load_s', g['load_s']):.3g} s per job",
                [self.cite("calibration")],
            )
            return {
                "s_per_image": c["s_per_image"],
                "steps": c["steps"],
                "resolution": c["resolution"],
                "load_s": c.get("load_s", g["load_s"]),
                "gpu_mem_gb": c.get("gpu_mem_gb") or (0.0 if self.on_cpu else g["gpu_mem_gb"]),
                "refs": {self.cite("calibration")},
                "scale": 1.0,
            }
        self.figure(
            "generate (SDXL)",
            f"{g['s_per_image']:.3g} s/image at 30 steps, 1024 px on A100 (scaled by steps and pixels); "
            f"load {g['load_s']} s per job; peak {g['gpu_mem_gb']} GB",
            [self.cite(g["source"]), self.cite(g["load_source"])],
        )
        return {
            "s_per_image": g["s_per_image"],
            "steps": 30,
            "resolution": 1024,
            "load_s": g["load_s"],
            "gpu_mem_gb": g["gpu_mem_gb"],
            "refs": {self.cite(g["source"]), self.cite(g["load_source"])} | ({self.gpu_factor_ref()} - {""}),
            "scale": self.factor,
        }

    def per_image(self, family: str) -> dict:
        c = ((self.calibration or {}).get("per_image") or {}).get(family)
        if c and c.get("s"):
            self.figure(family, f"{c['s']:.3g} s/image", [self.cite("calibration")])
            return {**c, "refs": {self.cite("calibration")}, "scale": 1.0}
        d = self.defaults["per_image"][family]
        unit = "s/call" if family == "vlm_call" else "s/image"
        self.figure(
            family, f"{d['s']:.3g} {unit}" + (f" ({d['note']})" if d.get("note") else ""), [self.cite(d["source"])]
        )
        gpu = family in self.defaults["gpu_rules"]
        return {**d, "refs": {self.cite(d["source"])}, "scale": self.factor if gpu else 1.0}


# ------------------------------------------------------------------ sizes from the config
_VOC_SETS = {
    "2007": {"train": 209, "val": 213, "trainval": 422},
    "2012": {"train": 1464, "val": 1449, "trainval": 2913},
}


def _count_lines(path: Path) -> int:
    return sum(1 for ln in path.read_text().splitlines() if ln.strip())


class Sizes:
    """Image counts of the splits: from files already made, else the config / published sizes."""

    def __init__(self, cfg: dict, figures: Figures):
        self.cfg, self.fig = cfg, figures
        self.out = cfg["outdir"].rstrip("/")
        self.raw = cfg.get("raw_dir", "resources/raw").rstrip("/")
        self.notes: list[str] = []

    def split(self, split: str, which: str) -> tuple[int, str]:
        s = self.cfg["splits"][split]
        ds_name = s["dataset"]
        made = Path(f"{self.out}/{ds_name}/{split}/splits/{which}.txt")
        if made.exists():
            return _count_lines(made), "counted"
        ref = s[which]
        ds = self.cfg["datasets"][ds_name]
        kind, _, name = str(ref).partition(":")
        if kind == "list":
            f = Path(f"{self.raw}/lists/{name}.txt")
            if f.exists():
                return _count_lines(f), "counted"
            m = re.search(r"(\d+)$", name)
            n = 1449 if name.endswith("val") else int(m.group(1)) if m else None
            if n is not None:
                self.fig.figure(f"split {split}/{which}", f"{n} images", [self.fig.cite("voc_split_sizes")])
                return n, self.fig.cite("voc_split_sizes")
        if ds.get("kind") == "demo":
            return int(ds.get(f"num_{which}", 0)), "config"
        if ds.get("kind") == "voc" and kind == "set" and name in _VOC_SETS.get(str(ds.get("year")), {}):
            n = _VOC_SETS[str(ds["year"])][name]
            self.fig.figure(f"split {split}/{which}", f"{n} images", [self.fig.cite("voc_split_sizes")])
            return n, self.fig.cite("voc_split_sizes")
        if ds.get("kind") == "vaihingen" and kind == "set":
            n = self._vaihingen_patches(ds, name)
            if n is not None:
                self.fig.figure(f"split {split}/{which}", f"~{n} patches", [self.fig.cite("vaihingen_tiles")])
                return n, self.fig.cite("vaihingen_tiles")
        self.notes.append(f"size of {split}/{which} unknown (make the split first): counted as 0")
        return 0, "unknown"

    @staticmethod
    def _vaihingen_patches(ds: dict, name: str) -> int | None:
        """Patches of a Vaihingen split's tiles, at the average tile size (2064 x 2494 px)."""
        from segaug.data.vaihingen import THESIS_SPLITS, patch_grid

        tiles = (ds.get("splits") or {}).get(name) or THESIS_SPLITS.get(name)
        if not tiles:
            return None
        size = int(ds.get("patch_size", 512))
        return len(tiles) * len(patch_grid(2064, 2494, size, int(ds.get("stride", size))))

    def gen_images(self, split: str, dataset: str, plan: str) -> tuple[int, str]:
        """|D_gen| of a plan: read from the plan file, else predicted."""
        f = Path(f"{self.out}/{dataset}/{split}/gen/plans/{plan}.json")
        if f.exists():
            return len(json.loads(f.read_text())["entries"]), "counted"
        n_train, _ = self.split(split, "train")
        kind, _, n = plan.partition("-")
        if kind == "uniform":
            return int(n) * n_train, "predicted"
        if n == "auto":  # the n whose |D_gen| is closest to |D_origin|
            return n_train, "predicted"
        # Table 4 of the paper on VOC7 (209 images): 15 n - 190, scaled by the split's size
        return max(0, round((15 * int(n) - 190) * n_train / 209)), "predicted " + self.fig.cite("che_table4")


# ------------------------------------------------------------------ per-job costs
@dataclass
class Cost:
    gpu_s: float = 0.0
    cpu_s: float = 0.0
    gpu_mem_gb: float = 0.0
    disk_gb: float = 0.0
    refs: set = field(default_factory=set)


def train_cfg_of(cfg: dict, model: str) -> dict:
    from segaug.train.run import TRAIN_DEFAULTS

    return {**TRAIN_DEFAULTS, **cfg.get("train", {}), **cfg["models"][model].get("train", {})}


def config_variants(cfg: dict) -> dict:
    from segaug.workflow.config import expand_variants

    return expand_variants(cfg) if cfg.get("generative") else {}


class Estimator:
    def __init__(self, cfg: dict, figures: Figures):
        self.cfg, self.fig = cfg, figures
        self.sizes = Sizes(cfg, figures)
        self.variants = config_variants(cfg)
        self.gen = cfg.get("generative") or {}
        self.hf_home = cfg.get("hf_home", "resources/huggingface").rstrip("/")

    # -- helpers
    def _trainset_images(self, split, dataset, trainset) -> int:
        n, _ = self.sizes.split(split, "train")
        kind, _, name = trainset.partition("-")
        if kind == "paste":
            return n + n * int((self.cfg["paste"].get(name) or {}).get("copies", 1))
        if kind == "gen":
            from segaug.workflow.plan import plan_name

            g, _ = self.sizes.gen_images(split, dataset, plan_name(self.variants[name]))
            return n + g
        return n

    def generator_cfg(self, variant: str) -> tuple[str, dict]:
        name = self.variants[variant]["generator"]
        return name, {**self.gen.get("generator_defaults", {}), **self.gen["generators"][name]}

    # -- the models
    def cost(self, job: Job) -> Cost:
        w, rule, f = job.wildcards, job.rule, self.fig
        fn = getattr(self, f"_cost_{rule}", None)
        if fn:
            return fn(w)
        fixed = f.defaults["fixed_s"]
        s = fixed.get(rule, fixed["default"])
        name = "other jobs" if rule not in fixed else rule
        f.figure(
            name,
            f"{s} s per job" + (" (tables, figures, splits, lists, markers)" if rule not in fixed else ""),
            [f.cite(fixed["source"])],
        )
        return Cost(cpu_s=s, refs={f.cite(fixed["source"])})

    def _cost_train(self, w) -> Cost:
        m = w["model"]
        arch = self.cfg["models"][m].get("arch", "")
        t = self.fig.train(m, arch)
        tc = train_cfg_of(self.cfg, m)
        px = tc["batch_size"] * tc["crop_size"][0] * tc["crop_size"][1]
        ref_px = t["batch"] * t["crop"][0] * t["crop"][1]
        step_s = t["s_per_step"] * px / ref_px * t["scale"]
        n_val, _ = self.sizes.split(w["split"], "val")
        vals = tc["steps"] // tc["val_interval"]
        gpu_s = tc["steps"] * step_s + vals * n_val * t["s_per_val_image"] * t["scale"]
        disk = t["params_m"] * 4e6 / 1e9  # the model file (fp32 state dict)
        return Cost(gpu_s=gpu_s, gpu_mem_gb=t["gpu_mem_gb"] * px / ref_px, disk_gb=disk, refs=set(t["refs"]))

    def _cost_evaluate(self, w) -> Cost:
        m = w["model"]
        t = self.fig.train(m, self.cfg["models"][m].get("arch", ""))
        n_val, _ = self.sizes.split(w["split"], "val")
        # the model and one image at the test scale: a fraction of the training's memory (assumed)
        mem = t["gpu_mem_gb"] / 4
        return Cost(gpu_s=n_val * t["s_per_val_image"] * t["scale"] + 30, gpu_mem_gb=mem, refs=set(t["refs"]))

    def _per_image(self, family, n, mult=1.0) -> Cost:
        p = self.fig.per_image(family)
        s = n * p["s"] * mult * p["scale"]
        if family in self.fig.defaults["gpu_rules"]:
            mem = 0.0 if self.fig.on_cpu else p.get("gpu_mem_gb", 0.0)
            return Cost(gpu_s=s, gpu_mem_gb=mem, refs=set(p["refs"]))
        return Cost(cpu_s=s, refs=set(p["refs"]))

    def _cost_captions(self, w) -> Cost:
        return self._per_image("captions", self.sizes.split(w["split"], "train")[0])

    def _cost_priors(self, w) -> Cost:
        n = self.sizes.split(w["split"], "train")[0]
        c = self._per_image("priors", n, 2.0)  # image prior and label prior
        c.disk_gb = 2 * n * self.fig.defaults["disk"]["prior_mb"] / 1e3
        return c

    def _cost_plan(self, w) -> Cost:
        return self._per_image("plan", self.sizes.split(w["split"], "train")[0])

    def _cost_pool(self, w) -> Cost:
        return self._per_image("pool", self.sizes.split(w["split"], "train")[0])

    def _cost_surfaces(self, w) -> Cost:
        return self._per_image("surfaces", self.sizes.split(w["split"], "train")[0])

    def _cost_prepare_dataset(self, w) -> Cost:
        ds = self.cfg["datasets"][w["dataset"]]
        year = str(ds.get("year", ""))
        n = _VOC_SETS.get(year, {}).get("trainval", 0)
        if ds.get("kind") == "demo":
            n = int(ds.get("num_train", 0)) + int(ds.get("num_val", 0))
        c = self._per_image("prepare_dataset", n)
        d = self.fig.defaults["disk"]["datasets"]
        c.disk_gb = d.get(year, {}).get("canonical", 0.0)
        c.refs.add(self.fig.cite(d["source"]))
        return c

    def _cost_download_dataset(self, w) -> Cost:
        ds = self.cfg["datasets"][w["dataset"]]
        d = self.fig.defaults["disk"]["datasets"]
        fixed = self.fig.defaults["fixed_s"]
        return Cost(
            cpu_s=fixed["download_dataset"],
            disk_gb=d.get(str(ds.get("year", "")), {}).get("tar", 0.0),
            refs={self.fig.cite(d["source"]), self.fig.cite(fixed["source"])},
        )

    def _cost_paste(self, w) -> Cost:
        n = self.sizes.split(w["split"], "train")[0]
        p = self.cfg["paste"].get(w["method"]) or {}
        copies = int(p.get("copies", 1))
        c = self._per_image("paste", n * copies)
        if w["method"] == "vlm" or p.get("placement") == "vlm":
            objs = p.get("objects_per_image", [1, 3])
            c2 = self._per_image("vlm_call", n * copies * (objs[0] + objs[1]) / 2)
            c.cpu_s += c2.cpu_s
            c.refs |= c2.refs
        c.disk_gb = n * copies * self.fig.defaults["disk"]["pasted_image_mb"] / 1e3
        return c

    def _cost_generate(self, w) -> Cost:
        """One shard: shard_size images (the last shard of a set may hold fewer)."""
        n = int(w.get("_images", self.gen.get("shard_size", 64)))
        return self._generate(w["variant"], n)

    def _generate(self, variant: str, n: int) -> Cost:
        name, g = self.generator_cfg(variant)
        f = self.fig.generate(name)
        v = self.variants[variant]
        per = f["s_per_image"] * (g.get("steps", 30) / f["steps"]) * (g.get("resolution", 1024) / f["resolution"]) ** 2
        cands = int(v.get("candidates", 1))
        gpu_s = (f["load_s"] + n * cands * per) * f["scale"]
        d = self.fig.defaults["disk"]
        disk = n * d["image_mb"] / 1e3
        return Cost(
            gpu_s=gpu_s,
            gpu_mem_gb=f["gpu_mem_gb"],
            disk_gb=disk,
            refs=set(f["refs"]) | {self.fig.cite(d["image_source"])},
        )

    def _cost_synthetic_set(self, w) -> Cost:
        from segaug.workflow.plan import plan_name

        n, _ = self.sizes.gen_images(w["split"], w["dataset"], plan_name(self.variants[w["variant"]]))
        c = self._per_image("synthetic_set", n)
        c.disk_gb = n * self.fig.defaults["disk"]["image_mb"] / 1e3
        return c

    def _cost_gen_quality(self, w) -> Cost:
        from segaug.workflow.plan import plan_name

        n, _ = self.sizes.gen_images(w["split"], w["dataset"], plan_name(self.variants[w["variant"]]))
        n_train, _ = self.sizes.split(w["split"], "train")
        return self._per_image("gen_quality", n + n_train)

    def _cost_prefetch_hub(self, w) -> Cost:
        repo = w["repo"].replace("--", "/", 1)
        gb, ref = self.hub_gb(repo)
        fixed = self.fig.defaults["fixed_s"]
        return Cost(cpu_s=fixed["prefetch_hub"], disk_gb=gb, refs={ref, self.fig.cite(fixed["source"])})

    def _cost_prefetch_weights(self, w) -> Cost:
        fixed = self.fig.defaults["fixed_s"]
        return Cost(
            cpu_s=fixed["prefetch_weights"],
            disk_gb=self.fig.defaults["disk"]["weights_per_model"],
            refs={self.fig.cite("hub_params"), self.fig.cite(fixed["source"])},
        )

    def _cost_prefetch_inception(self, w) -> Cost:
        fixed = self.fig.defaults["fixed_s"]
        return Cost(
            cpu_s=fixed["prefetch_hub"],
            disk_gb=self.fig.defaults["disk"]["inception"],
            refs={self.fig.cite("hub_params"), self.fig.cite(fixed["source"])},
        )

    def hub_gb(self, repo: str) -> tuple[float, str]:
        """GB of a Hub repo: its size in hf_home when already cached, else the defaults."""
        cache = Path(self.hf_home) / "hub" / ("models--" + repo.replace("/", "--"))
        if cache.is_dir():
            blobs = cache / "blobs"
            size = sum(p.stat().st_size for p in (blobs if blobs.is_dir() else cache).rglob("*") if p.is_file())
            if size:
                return size / 1e9, "measured (cache)"
        h = self.fig.defaults["disk"]["hub"]
        return float(h.get(repo, h["default"])), self.fig.cite(h["source"])

    # -- the shards of plans not made yet
    def predicted_shards(self, jobs: list[Job]) -> list[Job]:
        from segaug.workflow.plan import plan_name

        have = {
            (j.wildcards.get("dataset"), j.wildcards.get("split"), j.wildcards.get("variant"), j.wildcards.get("seed"))
            for j in jobs
            if j.rule == "generate"
        }
        shard = int(self.gen.get("shard_size", 64))
        out = []
        for j in jobs:
            w = j.wildcards
            key = (w.get("dataset"), w.get("split"), w.get("variant"), w.get("seed"))
            if j.rule != "synthetic_set" or key in have:
                continue
            plan = plan_name(self.variants[w["variant"]])
            if Path(f"{self.sizes.out}/{w['dataset']}/{w['split']}/gen/plans/{plan}.json").exists():
                continue  # the plan exists, so the dry run listed the shards still to make
            n, _ = self.sizes.gen_images(w["split"], w["dataset"], plan)
            for k in range(max(1, math.ceil(n / shard))):
                size = min(shard, n - k * shard) if n else 0
                out.append(Job("generate", {**w, "shard": str(k), "_images": str(size)}, predicted=True))
        return out


# ------------------------------------------------------------------ the sheet
@dataclass
class Row:
    rule: str
    jobs: int = 0
    predicted: int = 0
    gpu_h: float = 0.0
    cpu_h: float = 0.0
    gpu_mem_gb: float = 0.0
    disk_gb: float = 0.0
    refs: set = field(default_factory=set)


def estimate(cfg: dict, jobs: list[Job], figures: Figures) -> dict:
    """Rows per rule family, totals, the disk breakdown and the sources."""
    est = Estimator(cfg, figures)
    jobs = list(jobs) + est.predicted_shards(jobs)
    rows: dict[str, Row] = {}
    disk = {"datasets": defaultdict(float), "weights": defaultdict(float), "results": 0.0}
    disk_refs = {"datasets": set(), "weights": set(), "results": set()}
    for j in jobs:
        c = est.cost(j)
        r = rows.setdefault(j.rule, Row(j.rule))
        r.jobs += 1
        r.predicted += j.predicted
        r.gpu_h += c.gpu_s / 3600
        r.cpu_h += c.cpu_s / 3600
        r.gpu_mem_gb = max(r.gpu_mem_gb, c.gpu_mem_gb)
        r.disk_gb += c.disk_gb
        r.refs |= c.refs
        if j.rule in ("download_dataset", "prepare_dataset"):
            disk["datasets"][j.wildcards["dataset"]] += c.disk_gb
            disk_refs["datasets"] |= c.refs
        elif j.rule == "prefetch_hub":
            disk["weights"][j.wildcards["repo"].replace("--", "/", 1)] += c.disk_gb
        elif j.rule == "prefetch_weights":
            disk["weights"][f"{j.wildcards['model']} (ImageNet backbone)"] += c.disk_gb
        elif j.rule == "prefetch_inception":
            disk["weights"]["FID Inception (torch-fidelity)"] += c.disk_gb
        else:
            disk["results"] += c.disk_gb
    total = Row(
        "total",
        jobs=sum(r.jobs for r in rows.values()),
        predicted=sum(r.predicted for r in rows.values()),
        gpu_h=sum(r.gpu_h for r in rows.values()),
        cpu_h=sum(r.cpu_h for r in rows.values()),
        gpu_mem_gb=max((r.gpu_mem_gb for r in rows.values()), default=0.0),
        disk_gb=sum(r.disk_gb for r in rows.values()),
    )
    return {"rows": list(rows.values()), "total": total, "disk": disk, "notes": est.sizes.notes, "figures": figures}


def _h(x: float) -> str:
    return "0" if x == 0 else f"{x:.2f}" if x < 10 else f"{x:,.0f}"


def _gb(x: float) -> str:
    return "-" if x == 0 else f"{x:.2f}" if x < 10 else f"{x:,.0f}"


def format_sheet(sheet: dict, configfile: str, gpu: str) -> str:
    rows, total, fig = sheet["rows"], sheet["total"], sheet["figures"]
    cal = fig.calibration
    lines = [
        f"Cost sheet of {configfile} (nothing was run; jobs from `snakemake -n`)",
        f"GPU figures for: {cal.get('device_name', '?') + ' (calibrated)' if cal else gpu}",
        "",
        f"{'rule':<22}{'jobs':>7}{'GPU-h':>10}{'CPU-h':>9}{'peak GPU GB':>13}{'disk GB':>10}  sources",
    ]
    for r in sorted(rows, key=lambda r: (-r.gpu_h, -r.cpu_h, r.rule)):
        jobs = f"{r.jobs}" + ("*" if r.predicted else "")
        refs = " ".join(sorted(r.refs, key=lambda s: (len(s), s)))
        lines.append(
            f"{r.rule:<22}{jobs:>7}{_h(r.gpu_h):>10}{_h(r.cpu_h):>9}{_gb(r.gpu_mem_gb):>13}{_gb(r.disk_gb):>10}  {refs}"
        )
    lines.append("-" * 73)
    tj = f"{total.jobs}" + ("*" if total.predicted else "")
    lines.append(
        f"{'total':<22}{tj:>7}{_h(total.gpu_h):>10}{_h(total.cpu_h):>9}{_gb(total.gpu_mem_gb):>13}{_gb(total.disk_gb):>10}"
    )
    if total.predicted:
        lines.append(
            f"* {total.predicted} generation shards predicted (their plans are not made yet; "
            f"the dry run lists {total.jobs - total.predicted} jobs)"
        )
    d = sheet["disk"]
    lines += ["", "Disk:"]
    for ds, gb in d["datasets"].items():
        lines.append(f"  dataset {ds:<54}{_gb(gb):>8} GB")
    for repo, gb in sorted(d["weights"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  weights {repo:<54}{_gb(gb):>8} GB")
    lines.append(f"  {'results (models, synthetic and pasted sets, priors)':<62}{_gb(d['results']):>8} GB")
    all_gb = sum(d["datasets"].values()) + sum(d["weights"].values()) + d["results"]
    lines.append(f"  {'all':<62}{_gb(all_gb):>8} GB")
    for n in dict.fromkeys(sheet["notes"]):
        lines.append(f"note: {n}")
    lines += ["", "Figures:"]
    for name, text in sorted(fig.lines.items()):
        lines.append(f"  {name:<28}{text}")
    if fig.gpu != "A100" and not cal:
        lines.append(f"  (A100 figures x {fig.factor} for {fig.gpu})")
    lines += ["", "Sources:"]
    for i, (_key, (kind, text, url)) in enumerate(fig.used.items(), 1):
        lines.append(f"  [{i}] {kind}: {text}" + (f" <{url}>" if url else ""))
    return "\n".join(lines) + "\n"


def load_config(configfile: str | Path) -> dict:
    p = Path(configfile)
    if not p.exists():
        raise SegaugError(f"--configfile {p}: no such file")
    cfg = yaml.safe_load(p.read_text())
    if not isinstance(cfg, dict) or "outdir" not in cfg:
        raise SegaugError(f"{p}: not a segaug config (no 'outdir' key)")
    return cfg


def run_estimate(configfile, targets=(), calibration=None, gpu=None, forceall=False, as_json=False) -> str:
    cfg = load_config(configfile)
    figures = Figures.load(calibration, gpu)
    jobs, _ = dry_run_jobs(configfile, targets, forceall)
    sheet = estimate(cfg, jobs, figures)
    if as_json:
        return json.dumps(
            {
                "rows": [{**r.__dict__, "refs": sorted(r.refs)} for r in sheet["rows"]],
                "total": {**sheet["total"].__dict__, "refs": []},
                "disk": sheet["disk"],
                "sources": {i + 1: v for i, v in enumerate(figures.used.values())},
            },
            indent=1,
        )
    return format_sheet(sheet, str(configfile), figures.gpu)


# ------------------------------------------------------------------ `segaug estimate`
def add_arguments(ap) -> None:
    ap.description = (
        "Cost sheet of a config, per rule family and in total, from the dry run's job list (snakemake -n, "
        "run in the current directory: the repository root) and per-job cost models, every figure with its "
        "source. Run `segaug calibrate` once on your GPU for measured figures."
    )
    ap.add_argument("--configfile", required=True, help="the workflow config, e.g. config/config.yaml")
    ap.add_argument("targets", nargs="*", help="targets of the dry run (default: the workflow's default target)")
    ap.add_argument(
        "--calibration", default="calibration.json", help="calibration file (default: %(default)s, if present)"
    )
    ap.add_argument("--gpu", help="GPU type of the published figures: A100 (default), H100, A10, V100")
    ap.add_argument("--forceall", action="store_true", help="count every job, also those whose outputs exist")
    ap.add_argument("--json", action="store_true", help="machine-readable output")


def command(args) -> None:
    sys.stdout.write(run_estimate(args.configfile, args.targets, args.calibration, args.gpu, args.forceall, args.json))
