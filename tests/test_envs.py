"""Per-rule conda envs: every rule that runs code names one, every env pins its versions and
provides what its scripts import (a static scan, following imports into src/segaug)."""

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_snakemake

# import name -> the distribution that provides it
DIST = {
    "numpy": "numpy",
    "PIL": "pillow",
    "cv2": "opencv-python-headless",
    "scipy": "scipy",
    "tqdm": "tqdm",
    "torch": "torch",
    "torchvision": "torchvision",
    "pandas": "pandas",
    "segmentation_models_pytorch": "segmentation-models-pytorch",
    "timm": "timm",
    "lightning": "lightning",
    "torchmetrics": "torchmetrics",
    "yaml": "pyyaml",
    "jsonschema": "jsonschema",
    "tabulate": "tabulate",
    "diffusers": "diffusers",
    "transformers": "transformers",
    "controlnet_aux": "controlnet-aux",
    "torch_fidelity": "torch-fidelity",
    "huggingface_hub": "huggingface-hub",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "accelerate": "accelerate",
    "einops": "einops",
    "matplotlib": "matplotlib",
    "openai": "openai",
}


def rules_with_envs():
    """{rule: (env file, script name)} parsed from rules/*.smk."""
    out = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=(?:rule|checkpoint) )", smk.read_text()):
            m = re.match(r"(?:rule|checkpoint) (\w+):", block.strip())
            if not m:
                continue
            env = re.search(r'conda:\s*\n\s*(?:"\.\./(envs/[\w.]+)"|(train_env)\b)', block)
            script = re.search(r'script\("(\w+\.py)"\)', block)
            runs_code = "shell:" in block or "script:" in block or "run:" in block
            env = env and (env.group(1) or env.group(2))
            out[m.group(1)] = (env, script and script.group(1), runs_code)
    return out


def module_file(name: str) -> Path | None:
    base = ROOT / "src" / Path(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.exists():
            return p
    return None


def _import_nodes(tree, eager_only: bool):
    """Import statements of a module; with eager_only, those run at import time (not in functions)."""
    if not eager_only:
        yield from (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))
        return
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))


def third_party_imports(path: Path, seen=None, eager_only: bool = False) -> set[str]:
    """Top-level third-party modules imported by a file, following segaug imports.

    A module the code imports is followed with all its imports (its functions may run); the
    packages around it (``segaug/vlm/__init__.py`` for ``segaug.vlm.tiny``) run only their
    import-time statements, so only those are followed there.
    """
    seen = {} if seen is None else seen
    if path in seen and (seen[path] or eager_only):  # seen[path]: followed with all imports
        return set()
    seen[path] = not eager_only
    found = set()
    for node in _import_nodes(ast.parse(path.read_text()), eager_only):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif node.level > 0:  # `from .x import y` inside segaug
            package = path.parent.relative_to(ROOT / "src").parts
            base = ".".join(package[: len(package) - node.level + 1] + ((node.module,) if node.module else ()))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            top = name.split(".")[0]
            if top == "segaug":  # importing segaug.a.b runs segaug/__init__.py and a/__init__.py too
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    f = module_file(".".join(parts[:i]))
                    if f:
                        found |= third_party_imports(f, seen, eager_only=eager_only or i < len(parts))
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return found


def env_packages(env_file: str) -> dict[str, str]:
    env = yaml.safe_load((ROOT / env_file).read_text())
    pkgs = {}
    for dep in env["dependencies"]:
        for spec in dep["pip"] if isinstance(dep, dict) else [dep]:
            m = re.match(r"^([A-Za-z0-9_.-]+)\s*(==|=)\s*([\w.*+-]+)$", spec)
            assert m, f"{env_file}: '{spec}' is not pinned to a version"
            pkgs[m.group(1).lower()] = m.group(3)
    return pkgs


RULES = rules_with_envs()

# rules whose env is `train_env` (rules/common.smk) run in the env of the model's backend; each
# env needs what the script imports except the other backend's own packages (imported lazily,
# past the dispatch on the backend; tests/test_mmseg.py runs the scripts in an env without them)
BACKEND_ENVS = {
    "envs/train.yaml": {"mmseg", "mmengine", "mmcv", "mmdet"},
    "envs/mmseg.yaml": {
        "lightning",
        "segmentation_models_pytorch",
        "timm",
        "transformers",
        "huggingface_hub",
        "tokenizers",
        "safetensors",
        "torchmetrics",
    },
}
DIST.update({"mmseg": "mmsegmentation", "mmengine": "mmengine", "mmcv": "mmcv-lite", "mmdet": "mmdet"})
ALT_DIST = {"cv2": ("opencv-python-headless", "opencv-python")}


def envs_of(env: str) -> dict[str, set[str]]:
    """{env file: imports it need not provide} for a rule's env (a file or `train_env`)."""
    return BACKEND_ENVS if env == "train_env" else {env: set()}


def test_every_rule_that_runs_code_names_an_env():
    assert RULES, "no rules parsed"
    for rule, (env, _, runs_code) in RULES.items():
        if runs_code:
            assert env, f"rule {rule} runs code but names no conda env"
            for e in envs_of(env):
                assert (ROOT / e).exists(), f"rule {rule}: {e} missing"


@pytest.mark.parametrize("rule", sorted(r for r, v in RULES.items() if v[1]))
def test_env_provides_what_the_script_imports(rule):
    envs, script, _ = RULES[rule]
    for env, exempt in envs_of(envs).items():
        pkgs = env_packages(env)
        needed = third_party_imports(ROOT / "scripts" / script) - exempt
        missing = sorted(
            f"{m} ({DIST.get(m, '?')})"
            for m in needed
            if not any(d.lower() in pkgs for d in ALT_DIST.get(m, (DIST.get(m, m),)))
        )
        assert not missing, f"rule {rule}: {env} lacks {missing} imported by scripts/{script}"


def test_env_pins_match_pyproject():
    """The envs and pyproject pin the same versions (one truth for tests and cluster)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    pins = dict(re.findall(r'"([A-Za-z0-9_.-]+)==([\w.]+)"', pyproject))
    for env in sorted((ROOT / "envs").glob("*.yaml")):
        for name, version in env_packages(str(env.relative_to(ROOT))).items():
            if name in {k.lower() for k in pins}:
                assert pins[next(k for k in pins if k.lower() == name)] == version, (env.name, name)


@pytest.mark.workflow
def test_lint_is_clean(tmp_path):
    p = run_snakemake("--lint", cwd=ROOT)
    assert "Congratulations, your workflow is in a good condition!" in p.stdout + p.stderr
