"""Runs you can watch: every training writes TensorBoard event files beside curve.csv (smp backend
through Lightning's TensorBoardLogger, mmseg backend through mmengine's TensorboardVisBackend),
with the loss, the learning rate, validation mIoU and per-class IoU; `logger: wandb` in offline
mode; the model file and curve are the same bytes with and without tracking."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import RUN, _args, _script, shapes  # noqa: F401

from segaug.errors import SegaugError
from segaug.train import tracking

ROOT = Path(__file__).resolve().parents[1]


def scalars(tb_dir: Path) -> dict:
    """tag -> [(step, value)] of every event file in ``tb_dir``, read with TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(tb_dir.glob("events.out.tfevents.*"))
    assert files, f"no event file in {tb_dir}"
    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def _curve(path):
    return list(csv.DictReader(Path(path).open()))


@pytest.fixture(scope="module")
def tracked(shapes, tmp_path_factory):  # noqa: F811
    """The same tiny run twice through scripts/train.py: TensorBoard (the default) and none."""
    tb, plain = tmp_path_factory.mktemp("tb"), tmp_path_factory.mktemp("plain")
    _script("train").main(_args(shapes, tb))
    _script("train").main(_args(shapes, plain, logger="none"))
    return tb, plain


def test_smp_training_writes_event_files_with_loss_lr_and_validation(tracked):
    tb, _ = tracked
    s = scalars(tb / "tb")
    curve = _curve(tb / "curve.csv")
    # validation: one point per curve row, the same mIoU, and every class's IoU
    assert [st for st, _ in s["val/miou"]] == [int(r["step"]) for r in curve] == [4, 8, 12, 16]
    for (_, v), r in zip(s["val/miou"], curve):
        assert v == pytest.approx(float(r["val_miou"]), abs=1e-6)
    assert [st for st, _ in s["val/iou/fg"]] == [4, 8, 12, 16] and "val/iou/bg" in s
    assert all(0 <= v <= 1 for _, v in s["val/iou/fg"] + s["val/pixel_acc"])
    # training: loss and learning rate every log_every (= 1 here: val_interval 4 // 4) steps
    assert [st for st, _ in s["train/loss"]] == list(range(1, 17))
    lrs = [v for _, v in s["train/lr"]]
    assert lrs[0] > lrs[-1] > 0  # poly decay
    assert all(v > 0 for _, v in s["train/loss"])


def test_tracking_changes_no_output_byte(tracked):
    tb, plain = tracked
    assert (tb / "curve.csv").read_bytes() == (plain / "curve.csv").read_bytes()
    assert (tb / "model.pt").read_bytes() == (plain / "model.pt").read_bytes()
    assert not (plain / "tb").exists()


def test_wandb_offline(shapes, tmp_path):  # noqa: F811
    """`logger: wandb` with WANDB_MODE=offline: a W&B run under the run directory (for `wandb
    sync`), next to the TensorBoard files; no account, no network."""
    pytest.importorskip("wandb")
    out = tmp_path / "run"
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "PYTHONPATH": str(ROOT / "src"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("WANDB_API_KEY", None)
    args = [sys.executable, str(ROOT / "scripts" / "train.py"), *_args(shapes, out, logger="wandb")]
    p = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((out / "wandb").iterdir()) if (out / "wandb").exists() else "no wandb dir"
    assert list(runs[0].glob("run-*.wandb")), list(runs[0].iterdir())
    assert "val/miou" in scalars(out / "tb")


def test_logger_errors(monkeypatch):
    with pytest.raises(SegaugError, match="logger: 'mlflow' is not one of"):
        tracking.check_logger("mlflow")
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(SegaugError, match="needs the wandb package"):
        tracking.check_logger("wandb")
    assert tracking.check_logger(None) == "tensorboard"
    assert tracking.lightning_loggers("none", "/nonexistent") == []
    assert tracking.run_name(RUN, Path("x")) == "shapes/all/tiny_psp/origin/ce/seed0"


def test_mmseg_training_writes_event_files(shapes, tmp_path):  # noqa: F811
    """The mmseg backend (mmengine's Runner, in the mmseg env): mmengine's own loss and lr at
    its log interval, and segaug's validation (mIoU, per-class IoU) at every val_interval."""
    from test_mmseg import MMSEG_PY, MODELS, _train_args, run_in_env

    if not MMSEG_PY.exists():
        if os.environ.get("SEGAUG_MMSEG_TESTS") == "1":
            pytest.fail(f"the mmseg env is absent ({MMSEG_PY})")
        pytest.skip(f"the mmseg env is absent ({MMSEG_PY}); `make mmseg-env` builds it")
    a, b = tmp_path / "a", tmp_path / "b"
    run_in_env(str(MMSEG_PY), _train_args(shapes, a, MODELS["pspnet_r50"]))
    run_in_env(str(MMSEG_PY), [*_train_args(shapes, b, MODELS["pspnet_r50"]), "--logger", "none"])
    s = scalars(a / "tb")
    curve = _curve(a / "curve.csv")
    assert [st for st, _ in s["val/miou"]] == [int(r["step"]) for r in curve] == [4, 8]
    for (_, v), r in zip(s["val/miou"], curve):
        assert v == pytest.approx(float(r["val_miou"]), abs=1e-6)
    assert "val/iou/fg" in s and "val/iou/bg" in s
    assert "loss" in s and "lr" in s  # mmengine's LoggerHook scalars
    assert (a / "curve.csv").read_bytes() == (b / "curve.csv").read_bytes()
    assert not (a / "state").exists() and not (b / "tb").exists()


def test_progress_is_log_lines_not_a_bar(caplog):
    """Long jobs (conversion, crops, paste, priors, captions, generation, downloads) log a line
    every SEGAUG_PROGRESS_SECONDS (30 s by default) and one at the end: no carriage returns."""
    from segaug.progress import Progress, progress

    with caplog.at_level("INFO", logger="segaug.progress"):
        assert list(progress(range(5), desc="paste (random)", every_s=0)) == [0, 1, 2, 3, 4]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("paste (random): 1/5 img (20%)") and "eta" in lines[0]
    assert len(lines) == 6 and lines[-1].startswith("paste (random): done, 5 img in")
    caplog.clear()
    with caplog.at_level("INFO", logger="segaug.progress"), Progress(None, "download x.tar", "MB") as p:
        p.update(2.5)  # within the interval: no line
    assert [r.getMessage()[:29] for r in caplog.records] == ["download x.tar: done, 2 MB in"]
    assert not any("\r" in r.getMessage() for r in caplog.records)
