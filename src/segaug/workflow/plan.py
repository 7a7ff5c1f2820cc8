"""Which trainings and synthetic sets each table and figure needs, from the config alone.

A :class:`Run` is one training (and its evaluation): a model trained on a training set of one
split with one loss and seed. Table 1, the ablation tables, the thesis table and the figures
each ask for a list of runs; the rules turn runs into paths. Plain Python over the config dict,
tested without Snakemake.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from segaug.workflow.config import table7_variant


@dataclass(frozen=True)
class Run:
    dataset: str
    split: str
    model: str
    trainset: str  # origin | paste-<method> | gen-<variant>
    loss: str
    seed: int

    @property
    def variant(self) -> str | None:
        """The generative variant of a ``gen-`` training set, else None."""
        return self.trainset.removeprefix("gen-") if self.trainset.startswith("gen-") else None

    def path(self, out: str, kind: str) -> str:
        """The run's directory: ``kind`` is ``train`` or ``eval``."""
        return f"{out}/{self.dataset}/{self.split}/{kind}/{self.model}/{self.trainset}/{self.loss}/seed{self.seed}"


class SyntheticSet(NamedTuple):
    dataset: str
    split: str
    variant: str
    seed: int


def split_dataset(cfg: dict, split: str) -> str:
    return cfg["splits"][split]["dataset"]


def table1_runs(cfg: dict, seeds: Iterable[int]) -> list[Run]:
    """Every split x model x (D_origin, D_final) x seed of Table 1."""
    t1, seeds = cfg["table1"], list(seeds)
    return [
        Run(split_dataset(cfg, split), split, model, trainset, t1["loss"], seed)
        for split in t1["splits"]
        for model in t1["models"]
        for trainset in ("origin", t1["d_final"])
        for seed in seeds
    ]


def ablation_rows(cfg: dict, table: str) -> list[str]:
    """The training sets of an ablation table's rows (Table 7: the w1 x w2 grid, w1 fastest)."""
    a = cfg["ablations"]
    if table == "table7":
        t7 = a["table7"]
        return [f"gen-{table7_variant(t7['base'], w1, w2)}" for w2 in t7["w2"] for w1 in t7["w1"]]
    return list(a[table])


def ablation_runs(cfg: dict, table: str, seeds: Iterable[int]) -> list[Run]:
    a, seeds = cfg["ablations"], list(seeds)
    ds = split_dataset(cfg, a["split"])
    return [Run(ds, a["split"], a["model"], ts, a["loss"], s) for ts in ablation_rows(cfg, table) for s in seeds]


def thesis_runs(cfg: dict, seeds: Iterable[int]) -> list[Run]:
    th, seeds = cfg["thesis"], list(seeds)
    ds = split_dataset(cfg, th["split"])
    return [Run(ds, th["split"], th["model"], r["trainset"], r["loss"], s) for r in th["rows"] for s in seeds]


def figures_cfg(cfg: dict) -> dict:
    """Model and split of Table 2 / Figure 5 / the sample grid (default: Table 1's first)."""
    f, t1 = cfg.get("figures") or {}, cfg["table1"]
    return {
        "model": f.get("model", t1["models"][0]),
        "split": f.get("split", t1["splits"][0]),
        "samples": f.get("samples", 4),
    }


def d_final_runs(cfg: dict, seeds: Iterable[int]) -> list[Run]:
    """D_origin and D_final of the figures' model and split, every seed."""
    f, t1, seeds = figures_cfg(cfg), cfg["table1"], list(seeds)
    ds = split_dataset(cfg, f["split"])
    return [Run(ds, f["split"], f["model"], ts, t1["loss"], s) for ts in ("origin", t1["d_final"]) for s in seeds]


def synthetic_sets(runs: Iterable[Run]) -> list[SyntheticSet]:
    """The synthetic sets (D_gen) the runs train on, each once, sorted."""
    return sorted({SyntheticSet(r.dataset, r.split, r.variant, r.seed) for r in runs if r.variant})


def plan_name(variant_cfg: dict) -> str:
    """The name of the plan a variant follows (``variant_cfg``: its expanded config block);
    plans are shared across variants and seeds."""
    if variant_cfg.get("balance", True):
        return f"balance-{variant_cfg.get('n_balance', 'auto')}"
    return f"uniform-{variant_cfg.get('copies', 1)}"


def gen_final_variant(cfg: dict) -> str | None:
    """The variant of Table 1's D_final when it is generative."""
    d = cfg["table1"]["d_final"]
    return d.removeprefix("gen-") if d.startswith("gen-") else None
