"""Mask2Former (transformers, ResNet backbone): a tiny random-weight model builds, predicts at
the input size, trains with its own loss and AdamW param groups, and goes through train,
evaluate and an exact resume."""

import csv

import lightning as L
import pytest
import torch

from segaug.data.canonical import ClassTable, samples
from segaug.errors import SegaugError
from segaug.train.mask2former import Mask2FormerSeg, pretrained_ids, semantic_to_masks
from segaug.train.models import create_model, has_own_loss, pad_multiple, predict_whole

TINY = {"arch": "Mask2Former", "tiny": True, "backbone_weights": None}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads cost more than they give
    yield
    torch.set_num_threads(n)


def _batch(seed=0, n=2, c=3, size=48):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    y = torch.randint(0, c, (n, size, size), generator=g)
    y[:, :4] = 255
    return x, y


def test_tiny_model_builds_and_predicts_at_input_size():
    torch.manual_seed(0)
    model = create_model(TINY, 3).eval()
    assert isinstance(model, Mask2FormerSeg) and has_own_loss(TINY)
    assert not has_own_loss({"arch": "PSPNet"})
    assert len(model.hf.model.transformer_module.decoder.layers) == 2  # decoder_layers of tiny
    assert model.hf.config.num_queries == 10 and pad_multiple(model) == 32
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 96))
        assert out.shape == (2, 3, 64, 96) and torch.isfinite(out).all()
        # a class score sums p(class) * sigmoid(mask) over the 10 queries
        assert (out >= 0).all() and (out <= 10).all()
        assert predict_whole(model, torch.randn(1, 3, 50, 70), 32).shape == (1, 3, 50, 70)
        assert predict_whole(model, torch.randn(1, 3, 64, 64), 32, (50, 70)).shape == (1, 3, 50, 70)


def test_semantic_to_masks():
    t = torch.tensor([[[0, 2], [255, 2]], [[255, 255], [255, 255]]])
    masks, classes = semantic_to_masks(t, 3)
    assert classes[0].tolist() == [0, 2] and masks[0].shape == (2, 2, 2)
    assert masks[0][1].tolist() == [[0, 1], [0, 1]] and masks[0].sum() == 3  # ignore in no mask
    assert classes[1].numel() == 0 and masks[1].shape == (0, 2, 2)
    with pytest.raises(SegaugError, match="outside"):
        semantic_to_masks(torch.tensor([[[0, 3]]]), 3)


def test_loss_is_finite_and_overfits_a_batch():
    torch.manual_seed(0)
    model = create_model(TINY, 3).train()
    x, y = _batch()
    y[1] = 255  # an image with nothing to learn: all queries -> "no object", no NaN
    opt = torch.optim.AdamW(model.param_groups(1e-3, 0.05, 0.1))
    losses = []
    for step in range(20):
        torch.manual_seed(step)  # point sampling of the loss
        loss = model.loss(x, y)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    empty = model.loss(x, torch.full_like(y, 255))
    empty.backward()
    assert torch.isfinite(empty) and empty > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_param_groups_follow_the_mmseg_recipe():
    model = create_model(TINY, 3)
    groups = {g["name"]: g for g in model.param_groups(1e-4, 0.05, 0.1)}
    assert list(groups)[0] == "head"  # group 0 carries the base lr (logged in the curve)
    assert groups["backbone"]["lr"] == pytest.approx(1e-5) and groups["head"]["lr"] == 1e-4
    assert groups["head_no_decay"]["weight_decay"] == 0 and groups["backbone"]["weight_decay"] == 0.05
    backbone = {id(p) for p in model.backbone.parameters()}
    assert all(id(p) in backbone for p in groups["backbone"]["params"])
    assert not any(id(p) in backbone for g in ("head", "head_no_decay") for p in groups[g]["params"])
    # frozen backbone BatchNorm affine (mmseg norm_cfg requires_grad=False) is left out; every
    # trainable parameter is in exactly one group
    grouped = [id(p) for g in groups.values() for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable) and len(trainable) < len(list(model.parameters()))
    no_decay = {id(p) for p in groups["head_no_decay"]["params"]}
    tm = model.hf.model.transformer_module
    for p in (
        tm.queries_features.weight,
        tm.queries_embedder.weight,
        tm.level_embed.weight,
        model.hf.model.pixel_level_module.decoder.level_embed,
    ):
        assert id(p) in no_decay


def test_config_errors_and_offline_weights():
    with pytest.raises(SegaugError, match="unknown key"):
        create_model({**TINY, "queries": 5}, 3)
    with pytest.raises(SegaugError, match="backbone"):
        create_model({**TINY, "backbone": "vit"}, 3)
    # what evaluate.load_model passes to rebuild a trained model: no download
    assert isinstance(create_model({**TINY, "encoder_weights": None}, 3), Mask2FormerSeg)
    # tests run offline with an empty cache: a clear error naming the weights and the fix
    cfg = {"arch": "Mask2Former", "backbone": "resnet50", "backbone_weights": "imagenet"}
    assert pretrained_ids(cfg) == ["microsoft/resnet-50"] and pretrained_ids(TINY) == []
    with pytest.raises(SegaugError, match=r"microsoft/resnet-50.*snakemake prefetch"):
        create_model(cfg, 3)
    from segaug.train.module import SegModule

    with pytest.raises(SegaugError, match="own fixed losses"):
        SegModule(TINY, 3, ["a", "b", "c"], {"name": "focal", "gamma": 2.0})
    with pytest.raises(SegaugError, match="class_weights"):
        SegModule(TINY, 3, ["a", "b", "c"], {"name": "ce", "class_weights": [1, 1, 1]})
    SegModule(TINY, 3, ["a", "b", "c"], {"name": "ce", "avg_non_ignore": False})  # options unused


def test_new_train_keys_validated_and_fingerprint_compatible():
    from segaug.train.run import fingerprint as _fingerprint
    from segaug.train.run import resolve_train_cfg

    with pytest.raises(SegaugError, match="optimizer"):
        resolve_train_cfg({"optimizer": "adam"})
    with pytest.raises(SegaugError, match="grad_clip"):
        resolve_train_cfg({"grad_clip": 0})
    with pytest.raises(SegaugError, match="backbone_lr_mult"):
        resolve_train_cfg({"backbone_lr_mult": -1})
    table = ClassTable(("a", "b"), ((0, 0, 0), (1, 1, 1)))
    fp = _fingerprint({}, table, resolve_train_cfg({}), {"name": "ce"}, 0, [], [])
    # an smp run checkpointed before these keys existed still resumes
    assert not {"optimizer", "grad_clip", "backbone_lr_mult"} & set(fp["train"])
    fp = _fingerprint({}, table, resolve_train_cfg({"optimizer": "adamw"}), {"name": "ce"}, 0, [], [])
    assert fp["train"]["optimizer"] == "adamw"


# ---------------------------------------------------------------- end to end


from test_train import shapes  # noqa: E402,F401  (the same 64x64 rectangles dataset)

# the MMSeg Mask2Former recipe keys (lr raised for a few steps)
TRAIN_CFG = {
    "steps": 8,
    "val_interval": 4,
    "batch_size": 2,
    "crop_size": [48, 48],
    "base_size": [64, 64],
    "ratio_range": [0.75, 1.25],
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 0.05,
    "min_lr": 0.0,
    "grad_clip": 0.01,
    "backbone_lr_mult": 0.1,
    "threads": 1,
    "num_workers": 0,
}


class Kill(L.Callback):
    """A job killed in the middle of the second epoch."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 6:
            raise RuntimeError("killed")


class GradNorms(L.Callback):
    """Norms of the gradients the optimizer stepped with (seen before the next zero_grad)."""

    def __init__(self):
        self.norms = []

    def on_before_zero_grad(self, trainer, pl_module, optimizer):
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if grads:
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def test_train_evaluate_and_resume(shapes, tmp_path):  # noqa: F811  (pytest fixture)
    from segaug.train.evaluate import evaluate
    from segaug.train.loop import train
    from segaug.train.module import poly_lr

    table = ClassTable.load(shapes / "classes.json")
    tr = samples(shapes, [f"im{i}" for i in range(8)])
    va = samples(shapes, ["im8", "im9"])

    def run(out, **kw):
        paths = {"out_model": out / "model.pt", "out_curve": out / "curve.csv", "state_dir": out / "state"}
        return train(tr, va, table, TINY, TRAIN_CFG, {"name": "ce"}, 0, device="cpu", **paths, **kw)

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    norms = GradNorms()
    run(straight, callbacks=[norms])
    assert norms.norms and max(norms.norms) <= 0.01 * 1.001  # grad_clip: max L2 norm 0.01
    rows = list(csv.DictReader((straight / "curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [4, 8]
    # the lr of the epoch's last step, group 0 = the head's (base) lr, poly down to min_lr 0
    assert float(rows[0]["lr"]) == pytest.approx(poly_lr(3, 8, 1e-3, 0.0), rel=1e-5)
    conf, sc = evaluate(straight / "model.pt", va, table, device="cpu")
    assert conf.sum() == 2 * 62 * 64 and 0 <= sc["miou"] <= 1
    a = torch.load(straight / "model.pt", weights_only=True)
    assert sc["miou"] == pytest.approx(a["history"][-1]["val_miou"])

    with pytest.raises(RuntimeError, match="killed"):
        run(resumed, callbacks=[Kill()])
    assert run(resumed)["resumed_from"] == str(resumed / "state" / "last.ckpt")
    b = torch.load(resumed / "model.pt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert a["history"] == b["history"]
