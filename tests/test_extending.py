"""docs/extending.md, followed to the letter: a toy paste method that reads the `context`
section and a toy dataset kind, each one module and one registry line taken from the page and
written into a copy of the repository, then run through the real Snakemake (schema, config
checks, rule, script, outputs). Nothing is patched in this process."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import ROOT, snakemake_bin

GUIDE = ROOT / "docs" / "extending.md"


def guide_blocks() -> list[tuple[str, str, str]]:
    """(action, path, code) of every python block of the guide that writes a file."""
    out = []
    for code in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S):
        first, _, rest = code.partition("\n")
        m = re.fullmatch(r"# (file|append to): (\S+)", first.strip())
        if m:
            out.append((m.group(1), m.group(2), rest))
    return out


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the repository with the guide's modules and registry lines added."""
    dst = tmp_path_factory.mktemp("repo")
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake", "results", ".venv*", ".git")
    for name in ("Snakefile", "rules", "scripts", "src", "config", "envs"):
        src = ROOT / name
        (shutil.copytree(src, dst / name, ignore=ignore) if src.is_dir() else shutil.copy(src, dst / name))
    blocks = guide_blocks()
    assert [(a, p) for a, p, _ in blocks] == [
        ("file", "src/segaug/paste/grid.py"),
        ("append to", "src/segaug/paste/methods.py"),
        ("file", "src/segaug/data/folder.py"),
        ("append to", "src/segaug/data/kinds.py"),
    ]
    for action, path, code in blocks:
        target = dst / path
        if action == "file":
            assert not target.exists(), path
            target.write_text(code)
        else:
            target.write_text(target.read_text() + "\n" + code)
    return dst


def snakemake(repo: Path, workdir: Path, *args, check=True):
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    env.pop("PYTHONPATH", None)  # the copy's src/ only (the Snakefile's prefix sets it for jobs)
    cmd = [snakemake_bin(), "-s", str(repo / "Snakefile"), "--directory", str(workdir), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"snakemake failed: {' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}")
    return p


def tiny_config(repo: Path, path: Path, **updates) -> Path:
    cfg = yaml.safe_load((repo / "config" / "demo.yaml").read_text())
    cfg["datasets"]["shapes"].update(num_train=12, num_val=6, width=96, height=72)
    cfg["seeds"] = [0]
    for key, value in updates.items():
        node = cfg
        *parents, last = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


# ------------------------------------------------------------------ a paste method


def test_the_guide_is_the_only_change(repo):
    """The copy differs from the repository by the guide's two modules and two lines."""
    assert (
        (repo / "src/segaug/paste/methods.py")
        .read_text()
        .startswith((ROOT / "src/segaug/paste/methods.py").read_text())
    )
    assert (repo / "src/segaug/data/kinds.py").read_text().startswith((ROOT / "src/segaug/data/kinds.py").read_text())


@pytest.mark.workflow
def test_a_paste_method_from_the_guide_runs_through_snakemake(repo, tmp_path):
    grid = {"rows": 4, "cols": 4, "objects_per_image": [2, 4]}
    cfg = tiny_config(repo, tmp_path / "cfg.yaml", **{"paste.grid": grid})
    target = "results/demo/shapes/full/paste/grid/seed0"
    snakemake(repo, tmp_path, target, "--cores", "2", "--configfile", str(cfg))
    out = tmp_path / target
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "grid" and summary["pastes"] > 0
    # every option in summary.json: the shared ones as always, then the method's own
    assert summary["options"] == {
        "copies_per_image": 1,
        "objects_per_image": [2, 4],
        "scale_range": [0.75, 1.25],
        "flip_prob": 0.5,
        "blend": "feather",
        "feather_px": 2,
        "rows": 4,
        "cols": 4,
    }
    assert summary["output"] == {"compress_level": 1, "image_format": "source"}
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert manifest and all(re.fullmatch(r"grid: cell [0-3],[0-3]", m["reason"]) for m in manifest)
    # the first object of each copy sees the source label: its cell's centre is on its surface
    src = tmp_path / "results/demo/shapes/dataset/labels"
    surfaces = {"car": 1, "boat": 2}  # the demo's road and water
    firsts = [m for m in manifest if m["order"] == 0]
    for m in firsts:
        label = np.asarray(Image.open(src / f"{m['target_id']}.png"))
        r, c = map(int, m["reason"].removeprefix("grid: cell ").split(","))
        assert label[int((r + 0.5) * 72 / 4), int((c + 0.5) * 96 / 4)] == surfaces[m["class_name"]], m


@pytest.mark.parametrize(
    "updates,message",
    [
        (
            {"paste.grid": {"rows": 2}, "context": None, "paste.context": None, "paste.vlm": None, "thesis": None},
            "key 'paste.grid': grid paste needs a 'context' section in the config",
        ),
        ({"paste.grid": {"rowz": 2}}, "unknown key 'paste.grid.rowz' (allowed here: blend, cols, compress_level"),
        ({"paste.grid": {"rows": 0}}, "key 'paste.grid.rows'"),
    ],
)
def test_the_schema_and_the_checks_know_the_new_method(repo, tmp_path, updates, message):
    cfg = tiny_config(repo, tmp_path / "cfg.yaml", **updates)
    p = snakemake(repo, tmp_path, "-n", "--configfile", str(cfg), check=False)
    assert p.returncode != 0 and message in p.stdout + p.stderr, p.stderr[-2000:]


# ------------------------------------------------------------------ a dataset kind


def folder_dataset(root: Path, n: int = 10) -> list[str]:
    """images/*.jpg, masks/*.png (background, road, car), classes.txt."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("background\nroad\ncar\n")
    rng = np.random.default_rng(0)
    ids = [f"img{k:02d}" for k in range(n)]
    for k, i in enumerate(ids):
        mask = np.zeros((48, 64), np.uint8)
        mask[24:, :] = 1
        mask[28 : 36 + k % 3, 10 + 3 * k : 22 + 3 * k] = 2
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / "images" / f"{i}.jpg")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return ids


@pytest.mark.workflow
def test_a_dataset_kind_from_the_guide_runs_through_snakemake(repo, tmp_path):
    ids = folder_dataset(tmp_path / "mine")
    # pool.classes stays [car, boat]: 'mine' has no boat, and its split is pasted by no table,
    # so the config holds the demo dataset and this one side by side
    cfg = tiny_config(
        repo,
        tmp_path / "cfg.yaml",
        **{
            "datasets.mine": {"kind": "folder", "path": str(tmp_path / "mine"), "seed": 0},
            "splits.own": {"dataset": "mine", "train": "set:train", "val": "set:val"},
        },
    )
    snakemake(repo, tmp_path, "results/demo/mine/own/splits/train.txt", "--cores", "2", "--configfile", str(cfg))
    ds = tmp_path / "results/demo/mine/dataset"
    assert json.loads((ds / "classes.json").read_text())["names"] == ["background", "road", "car"]
    train = (ds / "sets/train.txt").read_text().split()
    val = (ds / "sets/val.txt").read_text().split()
    assert (len(train), len(val)) == (8, 2) and sorted(train + val) == ids
    assert (tmp_path / "results/demo/mine/own/splits/train.txt").read_text().split() == train
    for i in ids:  # JPEGs copied unchanged, masks as index labels
        assert (ds / f"images/{i}.jpg").read_bytes() == (tmp_path / f"mine/images/{i}.jpg").read_bytes()
        assert np.array_equal(
            np.asarray(Image.open(ds / f"labels/{i}.png")), np.asarray(Image.open(tmp_path / f"mine/masks/{i}.png"))
        )
    # the same by hand, through the script's flags
    out = tmp_path / "by_hand"
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    p = subprocess.run(
        [
            sys.executable,
            str(repo / "scripts/prepare_dataset.py"),
            "--kind",
            "folder",
            "--root",
            str(tmp_path / "mine"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert (out / "sets/train.txt").read_text() == (ds / "sets/train.txt").read_text()
    p = subprocess.run(
        [sys.executable, str(repo / "scripts/prepare_dataset.py"), "--kind", "folder", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 2 and "error: --kind folder: needs path" in p.stderr, p.stderr


@pytest.mark.parametrize(
    "updates,message",
    [
        (
            {"datasets.mine": {"kind": "folder", "path": "PATH", "seeds": 1}},
            "unknown key 'datasets.mine.seeds' (allowed here: kind, path, seed)",
        ),
        ({"datasets.mine": {"kind": "folder"}}, "'path' is a required property"),
        (
            {"datasets.mine": {"kind": "folder", "path": "PATH"}, "thesis.split": "own"},
            "pool.classes[1]: unknown class 'boat' in dataset 'mine'; known: background, road, car",
        ),
    ],
)
def test_the_schema_and_the_checks_know_the_new_kind(repo, tmp_path, updates, message):
    folder_dataset(tmp_path / "mine")
    updates = json.loads(json.dumps(updates).replace("PATH", str(tmp_path / "mine")))
    cfg = tiny_config(
        repo,
        tmp_path / "cfg.yaml",
        **{"splits.own": {"dataset": "mine", "train": "set:train", "val": "set:val"}, **updates},
    )
    p = snakemake(repo, tmp_path, "-n", "--configfile", str(cfg), check=False)
    assert p.returncode != 0 and message in p.stdout + p.stderr, p.stderr[-2000:]
