"""``backend: mmseg`` (MMSegmentation through mmengine's Runner) against the smp backend.

The mmseg side runs in the mmseg env: ``.venv-mmseg`` (``make mmseg-env``, envs/mmseg.yaml's
CPU install: mmcv-lite + segaug's stand-in for compiled ops) or the interpreter named by
``SEGAUG_MMSEG_PYTHON``. Without it these tests skip, saying so; ``.ci/run`` builds it and sets
``SEGAUG_MMSEG_TESTS=1``, which turns the skip into a failure. The glue scripts are run in that
env as the rules run them (it has no Lightning, smp or transformers: the mmseg path must not
import them). Random init everywhere (backbone_weights: null): nothing is downloaded.
"""

import csv
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_train import MMSEG_R50_D8, RUN, TRAIN_CFG, _script, shapes  # noqa: F401

from segaug.errors import SegaugError

ROOT = Path(__file__).resolve().parents[1]
MMSEG_PY = Path(os.environ.get("SEGAUG_MMSEG_PYTHON") or ROOT / ".venv-mmseg" / "bin" / "python")
MODELS = {
    "deeplabv3plus_r50": {"arch": "DeepLabV3Plus", "backend": "mmseg", "backbone_weights": None},
    "pspnet_r50": {"arch": "PSPNet", "backend": "mmseg", "backbone_weights": None},
    "mask2former_r50": {"arch": "Mask2Former", "backend": "mmseg", "backbone_weights": None},
}
# mmseg 1.2.2 mask2former_r50_8xb2-160k_ade20k-512x512 with 21 classes (R50 backbone + head)
MMSEG_M2F_R50 = {"backbone": 23508032, "decode_head": 20500182}
CFG = {**TRAIN_CFG, "steps": 8, "val_interval": 4, "batch_size": 2}


@pytest.fixture(scope="module")
def mmseg_py():
    if not MMSEG_PY.exists():
        msg = f"the mmseg env is absent ({MMSEG_PY}); `make mmseg-env` builds it (.ci/run does)"
        if os.environ.get("SEGAUG_MMSEG_TESTS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return str(MMSEG_PY)


def run_in_env(py, args, timeout=900):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([py, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert p.returncode == 0, f"{args[:2]} failed ({p.returncode}):\n{p.stderr[-6000:]}"
    return p


def run_code(py, code, timeout=900):
    return run_in_env(py, ["-c", textwrap.dedent(code)], timeout)


# ------------------------------------------------------------ without mmseg (main env)


def test_library_imports_and_checks_without_mmseg():
    from segaug.train import mmseg_backend as mb
    from segaug.train.models import backend, model_family

    assert "mmseg" not in sys.modules
    assert backend({"arch": "PSPNet"}) == "smp" and model_family(MODELS["pspnet_r50"]).name == "mmseg"
    assert model_family(MODELS["pspnet_r50"]).train == "segaug.train.mmseg_backend:train"
    assert mb.config_path(MODELS["pspnet_r50"]) == mb.MMSEG_CONFIGS["pspnet_r50-d8"]
    with pytest.raises(SegaugError, match="backend must be one of smp, mmseg"):
        backend({"arch": "PSPNet", "backend": "mmsegmentation"})
    with pytest.raises(SegaugError, match=r"unknown key\(s\) \['encoder'\]"):
        mb.config_path({**MODELS["pspnet_r50"], "encoder": "resnet50"})
    with pytest.raises(SegaugError, match="no default config"):
        mb.config_path({"arch": "Unet", "backend": "mmseg"})
    with pytest.raises(SegaugError, match="'deeplabv3plus_r50-d8' is not a PSPNet"):
        mb.config_path({**MODELS["pspnet_r50"], "config": "deeplabv3plus_r50-d8"})
    with pytest.raises(SegaugError, match="backbone_weights must be imagenet"):
        mb.config_path({**MODELS["pspnet_r50"], "backbone_weights": "coco"})
    with pytest.raises(SegaugError, match="is not one of"):
        mb.config_path({**MODELS["pspnet_r50"], "config": "pspnet_r101"})
    with pytest.raises(SegaugError, match="the config's own losses"):
        mb._ce_options({"name": "focal", "gamma": 2.0}, "pspnet")
    with pytest.raises(SegaugError, match="the config's own losses"):
        mb._ce_options({"name": "ce", "class_weights": [1, 2]}, "mask2former")
    assert mb._ce_options({"name": "ce", "class_weights": [1, 2]}, "pspnet") == {
        "avg_non_ignore": True,
        "class_weight": [1.0, 2.0],
    }
    assert mb._ce_options({"name": "ce", "avg_non_ignore": False}, "pspnet") == {"avg_non_ignore": False}
    assert mb._ce_options({"name": "ce", "avg_non_ignore": False}, "mask2former") == {}
    # where mmseg is absent, a backend: mmseg model is one clear line
    from segaug.train.models import create_model

    if importlib.util.find_spec("mmseg") is None:
        with pytest.raises(SegaugError, match=r"needs mmsegmentation.*envs/mmseg.yaml"):
            create_model(MODELS["pspnet_r50"], 2)
        assert "mmcv._ext" not in sys.modules  # no stand-in without mmcv

    # Table 1 / 2 show the paper's values beside either backend's models
    from segaug.report.table2 import has_paper_values
    from segaug.report.tables import paper_miou

    assert paper_miou("pspnet_r50_mmseg", "voc7", "origin") == paper_miou("pspnet_r50", "voc7", "origin") == 47.04
    assert has_paper_values("deeplabv3plus_r50_mmseg", "voc7")
    assert "mmseg" not in sys.modules


# ------------------------------------------------------------ in the mmseg env


def test_configs_need_no_compiled_op_and_match_mmseg_counts(mmseg_py):
    """The three paper configs train a step and predict on CPU with mmcv-lite: the stand-in
    records no compiled op called; a compiled op that is called fails naming itself."""
    p = run_code(
        mmseg_py,
        f"""
        import json, torch
        from segaug.train import mmcv_standin, mmseg_backend as mb
        out = {{"standin": None, "models": {{}}}}
        mb.import_mmseg()
        out["standin"] = not mmcv_standin.compiled_ops_available()
        for name, cfg in {MODELS!r}.items():
            m = mb.mmseg_config(cfg, 21, None, (64, 64)).model.to_dict()
            model = mb.build_segmentor(m, init_weights=True)
            # the data stream's samples: uint8 HWC image, label, position, content size
            x = torch.randint(0, 256, (64, 64, 3), dtype=torch.uint8)
            y, hw = torch.randint(0, 21, (64, 64)), torch.tensor([64, 64])
            data = model.data_preprocessor(mb.collate([(x, y, 0, hw), (x, y, 1, hw)]), True)
            loss = sum(v for k, v in model(**data, mode="loss").items() if "loss" in k)
            loss.backward()
            logits = mb.MMSegLogits(model.eval(), 8)(torch.randn(1, 3, 64, 64))
            parts = {{k: sum(p.numel() for p in getattr(model, k).parameters())
                     for k in ("backbone", "decode_head", "auxiliary_head")
                     if getattr(model, k, None) is not None}}
            out["models"][name] = {{"params": parts, "logits": list(logits.shape)}}
            # segaug.train.mmseg_heads (the smp backend's head: mmseg) against mmseg's head:
            # the same parameter shapes
            if name != "mask2former_r50":
                from segaug.train import mmseg_heads
                ours = (mmseg_heads.ASPPHead(2048, 256, 21) if name.startswith("deeplab")
                        else mmseg_heads.PSPHead(2048, 21))
                shapes = lambda mod: sorted(tuple(p.shape) for p in mod.parameters())
                out["models"][name]["same_shapes"] = shapes(ours) == shapes(model.decode_head)
                # layer for layer: mmseg's weights (its classifier registered first) load into
                # ours in order and give the same logits
                theirs = model.decode_head.eval()
                sd = list(theirs.state_dict().items())
                sd = [kv for kv in sd if not kv[0].startswith("conv_seg.")] + [
                    kv for kv in sd if kv[0].startswith("conv_seg.")]
                keys = list(ours.state_dict())
                ours.load_state_dict({{k: v for k, (_, v) in zip(keys, sd)}})
                feats = [torch.randn(1, c, s, s) for c, s in
                         ((3, 64), (64, 32), (256, 16), (512, 8), (1024, 8), (2048, 8))]
                with torch.no_grad():
                    a, b = ours.eval()(feats), theirs(feats[2:])
                out["models"][name]["same_logits"] = bool(torch.allclose(a, b, atol=1e-5))
        out["called"] = sorted(mmcv_standin.CALLED)
        try:
            from mmcv.ops import nms
            nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
            out["nms"] = "ran"
        except mmcv_standin.MissingCompiledOp as e:
            out["nms"] = str(e)
        print("RESULT" + json.dumps(out))
    """,
    )
    out = json.loads(p.stdout.split("RESULT", 1)[1])
    print(json.dumps(out["models"], indent=1))
    if out["standin"]:  # mmcv-lite: nothing needed a compiled op, and a called one fails loudly
        assert out["called"] == [], out["called"]
        assert "'nms' is not available" in out["nms"]
    for name, m in out["models"].items():
        assert m["logits"] == [1, 21, 64, 64]
        if name != "mask2former_r50":
            assert m["same_shapes"] is True and m["same_logits"] is True, name
        assert m["params"] == MMSEG_R50_D8.get(name, MMSEG_M2F_R50), name


def _train_args(shapes, out, model, py_script="train"):  # noqa: F811
    return [
        str(ROOT / "scripts" / f"{py_script}.py"),
        "--dataset-root",
        str(shapes),
        "--train-list",
        str(shapes / "train.txt"),
        "--val-list",
        str(shapes / "val.txt"),
        "--model-json",
        json.dumps(model),
        "--train-json",
        json.dumps(CFG),
        "--loss-json",
        '{"name": "ce"}',
        "--seed",
        "0",
        "--run-json",
        json.dumps(RUN),
        "--out-model",
        str(out / "model.pt"),
        "--out-curve",
        str(out / "curve.csv"),
        "--state-dir",
        str(out / "state"),
        "--device",
        "cpu",
    ]


def _eval_args(shapes, model_dir, out):  # noqa: F811
    return [
        "--dataset-root",
        str(shapes),
        "--val-list",
        str(shapes / "val.txt"),
        "--model",
        str(model_dir / "model.pt"),
        "--out-metrics",
        str(out / "metrics.json"),
        "--out-confusion",
        str(out / "confusion.csv"),
        "--device",
        "cpu",
    ]


def _curve(path):
    return list(csv.DictReader(Path(path).open()))


def test_mmseg_trains_resumes_exactly_and_scores_like_smp(mmseg_py, shapes, tmp_path):  # noqa: F811
    """DeepLabV3+ R50-D8 through scripts/train.py + evaluate.py in the mmseg env; a run killed
    after its first checkpoint (with data-loading workers) resumes to the same weights and
    curve; side by side with the
    smp backend's paper model (V1c + aux head) on the same data, crops, schedule and seed."""
    model = MODELS["deeplabv3plus_r50"]
    a, b, smp_dir = tmp_path / "a", tmp_path / "b", tmp_path / "smp"
    run_in_env(mmseg_py, _train_args(shapes, a, model))
    run_code(
        mmseg_py,
        f"""
        from pathlib import Path
        from segaug.data.canonical import ClassTable, read_split, samples
        from segaug.train import mmseg_backend
        root, out = Path({str(shapes)!r}), Path({str(b)!r})
        tr = samples(root, read_split(root / "train.txt"))
        va = samples(root, read_split(root / "val.txt"))
        try:
            mmseg_backend.train(tr, va, ClassTable.load(root / "classes.json"), {model!r},
                                {{**{CFG!r}, "num_workers": 2}}, {{"name": "ce"}}, 0,
                                out / "model.pt", out / "curve.csv",
                                out / "state", device="cpu", stop_at=6)
        except RuntimeError as e:
            assert "killed" in str(e)
        else:
            raise SystemExit("not killed")
    """,
    )
    assert not (b / "model.pt").exists() and (b / "state" / "iter_4.pth").exists()
    p = run_in_env(mmseg_py, _train_args(shapes, b, model))
    assert "Loads checkpoint" in p.stdout + p.stderr  # resumed, not restarted
    assert not (a / "state").exists() and not (b / "state").exists()
    run_code(
        mmseg_py,
        f"""
        import torch
        a = torch.load({str(a / "model.pt")!r}, weights_only=True)
        b = torch.load({str(b / "model.pt")!r}, weights_only=True)
        assert a["backend"] == "mmseg" and a["state_dict"].keys() == b["state_dict"].keys()
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
        assert a["history"] == b["history"]
    """,
    )
    assert (a / "curve.csv").read_text() == (b / "curve.csv").read_text()
    run_in_env(mmseg_py, [str(ROOT / "scripts" / "evaluate.py"), *_eval_args(shapes, a, a)])

    # the smp backend's paper model on the same config (here, in the main env)
    import yaml

    smp_model = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["models"]
    smp_model = {**smp_model["deeplabv3plus_r50"], "encoder_weights": None}
    args = _train_args(shapes, smp_dir, smp_model)[1:]
    _script("train").main(args)
    _script("evaluate").main(_eval_args(shapes, smp_dir, smp_dir))

    mm, sm = (json.loads((d / "metrics.json").read_text()) for d in (a, smp_dir))
    assert mm.keys() == sm.keys()
    assert list(mm["iou"]) == list(sm["iou"]) == ["bg", "fg"]  # same class order
    assert mm["run"] == sm["run"] == RUN
    ca, cs = _curve(a / "curve.csv"), _curve(smp_dir / "curve.csv")
    print("mmseg curve", ca, "\nsmp curve", cs)
    assert [r["step"] for r in ca] == [r["step"] for r in cs] == ["4", "8"]
    assert ca[0].keys() == cs[0].keys()
    assert float(ca[0]["lr"]) > float(ca[-1]["lr"]) and float(cs[0]["lr"]) > float(cs[-1]["lr"])
    # both score the model with the same code: the file's last curve point is metrics' mIoU
    assert mm["miou"] == pytest.approx(float(ca[-1]["val_miou"]), abs=1e-6)
    assert sm["miou"] == pytest.approx(float(cs[-1]["val_miou"]), abs=1e-6)


def test_pspnet_and_mask2former_resume_exactly(mmseg_py, shapes, tmp_path):  # noqa: F811
    """4 steps straight vs killed at step 3 and resumed from the step-2 checkpoint (Mask2Former
    with its AdamW recipe: backbone lr x 0.1, clipping), then evaluated by our code."""
    p = run_code(
        mmseg_py,
        f"""
        import json, torch
        from pathlib import Path
        from segaug.data.canonical import ClassTable, read_split, samples
        from segaug.train import mmseg_backend
        from segaug.train.evaluate import evaluate
        root, out = Path({str(shapes)!r}), Path({str(tmp_path)!r})
        table = ClassTable.load(root / "classes.json")
        tr = samples(root, read_split(root / "train.txt"))
        va = samples(root, read_split(root / "val.txt"))
        base = {{**{CFG!r}, "steps": 4, "val_interval": 2}}
        m2f = dict(optimizer="adamw", lr=1e-4, weight_decay=0.05, grad_clip=0.01, min_lr=0.0)
        res = {{}}
        for name in ("pspnet_r50", "mask2former_r50"):
            model = {MODELS!r}[name]
            cfg = {{**base, **(m2f if name.startswith("mask2former") else {{}})}}
            def run(d, **kw):
                return mmseg_backend.train(tr, va, table, model, cfg, {{"name": "ce"}}, 0,
                                           d / "model.pt", d / "curve.csv", d / "state",
                                           device="cpu", **kw)
            run(out / name / "a")
            try:
                run(out / name / "b", stop_at=3)
            except RuntimeError:
                pass
            resumed = run(out / name / "b")["resumed_from"]
            a, b = (torch.load(out / name / x / "model.pt", weights_only=True) for x in "ab")
            same = all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
            _, sc = evaluate(out / name / "a" / "model.pt", va, table, device="cpu")
            res[name] = {{"resumed": bool(resumed), "same": same,
                         "history": a["history"] == b["history"],
                         "eval": abs(sc["miou"] - a["history"][-1]["val_miou"]) < 1e-9}}
        print("RESULT" + json.dumps(res))
    """,
    )
    res = json.loads(p.stdout.split("RESULT", 1)[1])
    for name, r in res.items():
        assert r == {"resumed": True, "same": True, "history": True, "eval": True}, name


def test_paper_dag_with_mmseg_models(tmp_path):
    """Table 1 from the mmseg backend: its models' train jobs get their config, and their
    backbone weights are prefetched (in envs/mmseg.yaml: rules/common.smk's train_env)."""
    from conftest import run_snakemake

    t1 = tmp_path / "t1.yaml"
    t1.write_text("table1:\n  models: [pspnet_r50_mmseg]\n  splits: [voc7]\n  loss: ce\n  d_final: paste-random\n")
    cfg = ["--configfile", str(ROOT / "config" / "config.yaml"), str(t1)]
    p = run_snakemake("-n", "-p", *cfg, cwd=tmp_path)
    cmds = [x for x in p.stdout.splitlines() if "scripts/train.py" in x]
    assert cmds and all("pspnet_r50_mmseg" in c for c in cmds)
    model = json.loads(cmds[0].split("--model-json '", 1)[1].split("'", 1)[0])
    assert model == {"arch": "PSPNet", "backend": "mmseg", "config": "pspnet_r50-d8", "backbone_weights": "imagenet"}
    p = run_snakemake("prefetch", "-n", *cfg, cwd=tmp_path)
    assert "prefetch_weights/pspnet_r50_mmseg.log" in p.stdout
