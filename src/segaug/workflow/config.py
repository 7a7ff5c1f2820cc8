"""The workflow config, checked when the workflow starts: the schema, then every cross-reference
(splits, models, losses, training sets, generative variants, context and thesis sections) and
every class name against the datasets' class tables. Each problem is one line naming the key.

Plain Python over the config dict (no Snakemake import): ``rules/common.smk`` calls
:func:`validate_config`, and the tests call it directly.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from segaug.workflow.checks import class_problems, class_tables

SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


def _format_error(err):
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(sorted(err.schema.get("properties", {}))) or "none"
        prefix = f"{where}." if err.absolute_path else ""
        return f"unknown key '{prefix}{extra[0]}' (allowed here: {allowed})"
    return f"key '{where}': {err.message}"


def load_schema(schema_path: str | Path = SCHEMA) -> dict:
    """The config schema: ``config/schema.yaml`` with the ``datasets`` and ``paste`` blocks made
    from the registries (segaug.data.kinds, segaug.paste.methods), their one source."""
    from segaug.data.kinds import datasets_schema
    from segaug.paste.methods import paste_schema

    schema = yaml.safe_load(Path(schema_path).read_text())
    props = schema["properties"]
    props["datasets"] = {**props.get("datasets", {}), **datasets_schema()}
    props["paste"] = {**props.get("paste", {}), **paste_schema()}
    return schema


def validate_config(cfg: dict, schema_path: str | Path = SCHEMA) -> tuple[dict, list[str]]:
    """Schema check plus cross-references: ({dataset: class table}, problems), one line per
    problem naming the key (only the first schema error: later checks assume a valid shape)."""
    schema = load_schema(schema_path)
    tables = {}
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    problems = [_format_error(e) for e in errors[:1]]
    if not problems:
        for name, s in cfg["splits"].items():
            if s["dataset"] not in cfg["datasets"]:
                problems.append(f"key 'splits.{name}.dataset': unknown dataset '{s['dataset']}'")
            for part in ("train", "val"):
                kind, _, ref = s[part].partition(":")
                if kind == "list" and ref not in cfg.get("lists", {}):
                    problems.append(f"key 'splits.{name}.{part}': unknown list '{ref}'")
        t1 = cfg["table1"]
        for key, section in (("models", "models"), ("splits", "splits")):
            for v in t1[key]:
                if v not in cfg[section]:
                    problems.append(f"key 'table1.{key}': unknown {key[:-1]} '{v}'")
        if t1["loss"] not in cfg["losses"]:
            problems.append(f"key 'table1.loss': unknown loss '{t1['loss']}'")
        tables, found = class_tables(cfg)
        problems += found + class_problems(cfg, tables)
        problems += trainset_problems(cfg, "table1.d_final", [t1["d_final"]])
        problems += generative_problems(cfg)
        problems += context_problems(cfg)
    return tables, problems


def expand_variants(cfg):
    """generative.variants (each over `default`) plus the Table 7 grid made from its base."""
    gen = cfg.get("generative") or {}
    base = gen.get("variants") or {}
    default = base.get("default", {})
    out = {name: {**default, **v} for name, v in base.items()}
    t7 = (cfg.get("ablations") or {}).get("table7")
    if t7 and t7["base"] in out:
        for w1 in t7["w1"]:
            for w2 in t7["w2"]:
                out[table7_variant(t7["base"], w1, w2)] = {
                    **out[t7["base"]],
                    "w1": w1,
                    "w2": w2,
                }
    return out


def table7_variant(base, w1, w2):
    return f"{base}_w1-{w1}_w2-{w2}"


def trainset_problems(cfg, key, trainsets):
    problems = []
    for ts in trainsets:
        kind, _, name = ts.partition("-")
        if ts == "origin":
            continue
        if kind == "paste" and name not in cfg["paste"]:
            problems.append(f"key '{key}': no paste method '{name}' in 'paste'")
        elif kind == "gen" and name not in expand_variants(cfg):
            problems.append(
                f"key '{key}': no variant '{name}' in 'generative.variants'"
                + ("" if cfg.get("generative") else " (the config has no 'generative' section)")
            )
    return problems


def context_problems(cfg):
    """The config sections each paste method reads (its registry entry), surface rules and the
    thesis section."""
    from segaug.paste.methods import get_method

    problems = []
    for name in cfg["paste"]:
        for section in get_method(name).sections:
            if not cfg.get(section):
                problems.append(f"key 'paste.{name}': {name} paste needs a '{section}' section in the config")
    ctx = cfg.get("context")
    if ctx:
        src = ctx["surfaces"]
        if src["source"] != "label" and "model" not in src:
            problems.append(f"key 'context.surfaces.model': source '{src['source']}' needs a model id")
        if src["source"] == "sam_clip" and "clip_model" not in src:
            problems.append("key 'context.surfaces.clip_model': source 'sam_clip' needs a CLIP model id")
        for cls, spec in ctx["rules"].items():
            missing = [x for x in spec["surfaces"] if x not in src["names"]]
            if missing:
                problems.append(f"key 'context.rules.{cls}.surfaces': {missing} not in context.surfaces.names")
    th = cfg.get("thesis")
    if th:
        for key, section in (("split", "splits"), ("model", "models")):
            if th[key] not in cfg[section]:
                problems.append(f"key 'thesis.{key}': unknown {key} '{th[key]}'")
        for k, row in enumerate(th["rows"]):
            if row["loss"] not in cfg["losses"]:
                problems.append(f"key 'thesis.rows.{k}.loss': unknown loss '{row['loss']}'")
        problems += trainset_problems(cfg, "thesis.rows", [r["trainset"] for r in th["rows"]])
        problems += trainset_problems(cfg, "thesis.examples", th.get("examples", []))
    return problems


def generative_problems(cfg):
    gen = cfg.get("generative")
    problems = []
    if gen:
        for name, v in expand_variants(cfg).items():
            key = f"generative.variants.{name}"
            g = v.get("generator")
            if g not in gen["generators"]:
                problems.append(f"key '{key}.generator': unknown generator '{g}'")
                continue
            inpaint = gen["generators"][g]["pipeline"] == "sdxl_inpaint"
            if inpaint != (v.get("prior") == "none"):
                problems.append(f"key '{key}.prior': use prior 'none' with an sdxl_inpaint generator and only with it")
        if "table7" in (cfg.get("ablations") or {}):
            b = cfg["ablations"]["table7"]["base"]
            if b not in (gen.get("variants") or {}):
                problems.append(f"key 'ablations.table7.base': unknown variant '{b}'")
    abl = cfg.get("ablations")
    if abl:
        for key, section in (
            ("split", "splits"),
            ("model", "models"),
            ("loss", "losses"),
        ):
            if abl[key] not in cfg[section]:
                problems.append(f"key 'ablations.{key}': unknown {key} '{abl[key]}'")
        for t in ("table3", "table4", "table5", "table6"):
            problems += trainset_problems(cfg, f"ablations.{t}", abl.get(t, []))
    return problems


if __name__ == "__main__":  # print the whole schema, the registries' blocks filled in
    import sys

    yaml.safe_dump(load_schema(sys.argv[1] if len(sys.argv) > 1 else SCHEMA), sys.stdout, sort_keys=False)
