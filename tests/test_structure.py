"""The shape of the code: no import cycles inside segaug, no private names imported across
modules, and no rule, script or workflow module that compares the name of a paste method or
of a dataset kind (each is one registry entry; the registries drive the rest)."""

import ast
import re

from conftest import ROOT

SRC = ROOT / "src"


def module_graph() -> dict[str, set[str]]:
    """segaug module -> segaug modules it imports (at the top or inside a function)."""
    mods = {}
    for p in SRC.rglob("*.py"):
        name = ".".join(p.relative_to(SRC).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                graph[m] |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                if node.module in mods:
                    graph[m].add(node.module)
                graph[m] |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = module_graph()
    assert "segaug.train.run" in graph["segaug.train.mmseg_backend"]  # the scan sees imports
    assert cycles(graph) == []


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_names_imported_across_modules():
    found = []
    for p in [*SRC.rglob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segaug"):
                found += [f"{p.relative_to(ROOT)}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert found == []


def test_no_rule_script_or_workflow_module_compares_a_method_or_kind_name():
    from segaug.data.kinds import REGISTRY as KINDS
    from segaug.paste.methods import REGISTRY as METHODS

    names = "|".join(sorted({*METHODS, *KINDS}))
    quoted = rf"""["'](paste-)?({names})["']"""
    compare = re.compile(rf"(==|!=|\bin)\s*\(?\s*{quoted}|{quoted}\s*(==|!=)")
    files = [
        *(ROOT / "rules").rglob("*.smk"),
        ROOT / "Snakefile",
        *(ROOT / "scripts").glob("*.py"),
        *(SRC / "segaug" / "workflow").glob("*.py"),
    ]
    found = [
        f"{f.relative_to(ROOT)}:{k}: {line.strip()}"
        for f in files
        for k, line in enumerate(f.read_text().splitlines(), 1)
        if compare.search(line)
    ]
    assert found == []
