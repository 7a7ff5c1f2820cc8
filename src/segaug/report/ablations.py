"""The paper's ablation tables (Tables 3-7) and the table of synthetic sets.

Every ablation row is a training set (``origin`` or ``gen-<variant>``) of one model on one
split; its mIoU is the mean and sample std over seeds. Paper values are keyed by the variant
names of ``config/config.yaml`` and shown beside ours when the split is VOC7, the paper's (blank
for other splits and for rows of other names).
The Table 3 mapping of rows to the paper's component check marks is our reading of the paper
(the check marks do not survive in its text): none 42.15, (1) 47.60, (2) 47.25, (1)+(2) 48.98,
(1)+(2)+(3) 50.27, all four 52.23.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from segaug.errors import SegaugError
from segaug.report.tables import mean_std

PAPER = {
    "table3": {
        "origin": 46.54,
        "gen-t3_none": 42.15,
        "gen-t3_cpa": 47.60,
        "gen-t3_vpb": 47.25,
        "gen-t3_cpa_vpb": 48.98,
        "gen-default": 50.27,
        "gen-t3_filter": 52.23,
    },
    "table4": {
        "origin": (46.54, 3.944, 0.253),
        "gen-n27": (50.27, 4.044, 0.231),
        "gen-n41": (50.37, 4.042, 0.231),
        "gen-n55": (49.25, 4.059, 0.224),
        "gen-n69": (47.32, 4.057, 0.225),
    },
    "table5": {"gen-prompt_caption": 47.24, "gen-prompt_classes": 48.21, "gen-default": 50.27},
    "table6": {
        "gen-default": 50.27,
        "gen-adapter_canny": 48.95,
        "gen-adapter_sketch": 47.52,
        "gen-controlnet_canny": 48.95,
        "gen-inpaint": 47.56,
    },
}
PAPER_TABLE7 = {  # (w1, w2) -> mIoU, Table 7 (rows w2, columns w1)
    (w1, w2): v
    for w2, row in zip(
        (0.7, 0.8, 0.9, 1.0),
        (
            (47.12, 47.32, 46.42, 45.36, 45.38),
            (48.51, 48.93, 48.32, 47.09, 46.79),
            (49.13, 50.27, 49.11, 48.79, 48.36),
            (48.13, 49.32, 48.91, 48.33, 47.03),
        ),
    )
    for w1, v in zip((0.6, 0.7, 0.8, 0.9, 1.0), row)
}
TITLES = {
    "table3": "Table 3: components (Class-Prompt Appending, Visual Prior Blending, balancing, CLIP filter)",
    "table4": "Table 4: number of synthetic images, data balance and quality",
    "table5": "Table 5: text prompt",
    "table6": "Table 6: visual prior and generator",
    "table7": "Table 7: blending weights w1 x w2",
    "synthetic_sets": "Synthetic sets: size, regenerations, balance, CLIP score, FID",
}


PAPER_SPLIT = "voc7"  # the paper's ablations are on VOC7; other splits get no paper column values


def _paper(table: str, runs: Sequence[Mapping]) -> dict:
    return PAPER.get(table, {}) if {r.get("split") for r in runs} == {PAPER_SPLIT} else {}


def _by_trainset(runs: Sequence[Mapping]) -> dict[str, list[Mapping]]:
    out: dict[str, list[Mapping]] = {}
    for r in runs:
        out.setdefault(r["trainset"], []).append(r)
    return out


def _miou(groups, trainset):
    grp = groups.get(trainset)
    if not grp:
        raise SegaugError(f"no metrics for training set {trainset!r}: its runs are missing")
    mean, std = mean_std([r["miou"] for r in grp])
    seeds = " ".join(str(s) for s in sorted(r["seed"] for r in grp))
    return round(mean, 2), round(std, 2), seeds


def ablation_rows(table: str, rows: Sequence[str], runs: Sequence[Mapping]) -> list[dict]:
    """Tables 3, 5, 6: one row per training set, in config order."""
    groups = _by_trainset(runs)
    paper = _paper(table, runs)
    out = []
    for ts in rows:
        mean, std, seeds = _miou(groups, ts)
        out.append(
            {"trainset": ts, "seeds": seeds, "miou_mean": mean, "miou_std": std, "paper_miou": paper.get(ts, "")}
        )
    return out


def table4_rows(rows, runs, plans: Mapping[str, Mapping], quality: Sequence[Mapping], variant_plans: Mapping[str, str]):
    """Table 4: R/S, entropy and CIR of D_final, mIoU, and the quality of the synthetic sets.

    ``plans`` maps plan name -> plan JSON; ``variant_plans`` variant -> plan name; ``quality``
    holds the quality.json of every (variant, seed) (CLIP score and FID averaged over seeds).
    """
    groups = _by_trainset(runs)
    out = []
    for ts in rows:
        mean, std, seeds = _miou(groups, ts)
        if ts == "origin":
            p = plans["balance-auto"]
            rs, ent, cir = f"{p['num_origin']}/0", p["entropy_origin"], p["cir_origin"]
            clip = fid = ""
        else:
            v = ts.removeprefix("gen-")
            p = plans[variant_plans[v]]
            rs, ent, cir = f"{p['num_origin']}/{p['num_generated']}", p["entropy_final"], p["cir_final"]
            q = [x for x in quality if x.get("variant") == v]
            clip = round(sum(x["clip_score_mean"] for x in q) / len(q), 2) if q else ""
            fid = round(sum(x["fid"] for x in q) / len(q), 2) if q else ""
        paper = _paper("table4", runs).get(ts)
        out.append(
            {
                "trainset": ts,
                "n_balance": "" if ts == "origin" else p["n_balance"],
                "R/S": rs,
                "entropy": ent,
                "cir": cir,
                "clip_score": clip,
                "fid": fid,
                "seeds": seeds,
                "miou_mean": mean,
                "miou_std": std,
                "paper_entropy": paper[1] if paper else "",
                "paper_cir": paper[2] if paper else "",
                "paper_miou": paper[0] if paper else "",
            }
        )
    return out


def table7_rows(runs: Sequence[Mapping]) -> list[dict]:
    """Table 7 as the paper prints it: one row per w2, one column per w1 (mean ± std)."""
    cells: dict[tuple[float, float], str] = {}
    groups = _by_trainset(runs)
    paper_grid = PAPER_TABLE7 if _paper("table3", runs) else {}
    for ts in groups:
        m = re.search(r"_w1-([0-9.]+)_w2-([0-9.]+)$", ts)
        if not m:
            continue
        mean, std, _ = _miou(groups, ts)
        cells[(float(m.group(1)), float(m.group(2)))] = f"{mean:.2f} ± {std:.2f}"
    if not cells:
        raise SegaugError("Table 7: no runs of the w1 x w2 grid")
    w1s = sorted({k[0] for k in cells})
    w2s = sorted({k[1] for k in cells})
    out = []
    for w2 in w2s:
        row = {"w2 \\ w1": w2}
        for w1 in w1s:
            paper = paper_grid.get((w1, w2))
            row[f"w1={w1}"] = cells.get((w1, w2), "") + (f" (paper {paper})" if paper else "")
        out.append(row)
    return out


def synthetic_set_rows(quality: Sequence[Mapping]) -> list[dict]:
    keys = (
        "dataset",
        "split",
        "variant",
        "seed",
        "images",
        "source_images",
        "regenerated_images",
        "entropy_origin",
        "entropy_final",
        "cir_origin",
        "cir_final",
        "clip_score_mean",
        "clip_score_std",
        "fid",
        "fid_feature",
    )
    rows = [{k: q.get(k, "") for k in keys} for q in quality]
    return sorted(rows, key=lambda r: (str(r["split"]), str(r["variant"]), int(r["seed"] or 0)))
