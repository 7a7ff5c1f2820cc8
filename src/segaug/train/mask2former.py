"""Mask2Former with a ResNet backbone (Hugging Face transformers), as a segaug segmentation model.

A model config (the ``models:`` section of config.yaml)::

    mask2former_r50:
      arch: Mask2Former
      backbone: resnet50          # resnet50 | resnet101
      backbone_weights: imagenet  # imagenet: microsoft/resnet-50 (-101) from the HF cache | null
      # optional, MMSeg's mask2former_r50_8xb2 values are the defaults:
      hidden_dim: 256             # query / transformer width (mmseg feat_channels)
      num_queries: 100
      decoder_layers: 9           # masked-attention decoder layers (mmseg num_layers)
      encoder_layers: 6           # deformable-attention layers of the pixel decoder
      freeze_backbone_norm: true  # backbone BN affine frozen (mmseg norm requires_grad=False)

``tiny: true`` shrinks every size (ResNet depths [1,1,1,1], widths [16,32,64,128], 32-d
transformer, 10 queries, 2 decoder layers, 1 pixel-decoder layer, 1024 loss points) so tests and
the demo run in seconds on a CPU; any size key given next to it wins.

:class:`Mask2FormerSeg` fits the training loop of :mod:`segaug.train.module`:

* ``forward(x)`` gives ``[B, num_classes, H, W]`` semantic scores at the input size, combined the
  standard way (MMSeg ``Mask2FormerHead.predict``: mask logits upsampled to the input, then
  ``einsum("bqc,bqhw->bchw", softmax(class)[..., :-1], sigmoid(mask))``), so whole-image
  inference (:func:`segaug.train.models.predict_whole`) and evaluation work unchanged;
* ``loss(x, target)`` turns each semantic label into one binary mask per class present
  (ignore pixels are 0 in every mask, as MMSeg's ``_seg_data_to_instance_data`` does) and returns
  transformers' Mask2Former loss: Hungarian matching on 12544 sampled points, class CE
  (weight 2, no-object 0.1) + mask BCE (5) + dice (5), summed over the prediction of the learned
  queries and of each decoder layer (10 sets for 9 layers, as in mmdet);
* ``param_groups(lr, weight_decay, backbone_lr_mult)`` gives the optimizer groups of the recipe.

What follows MMSeg's ``mask2former_r50_8xb2-160k_ade20k-512x512`` (the R50 recipe): ResNet-50
from ImageNet weights with frozen BatchNorm affine parameters, 100 queries, 256 dims, 9 decoder
layers, 6 deformable pixel-decoder layers (3 levels, 8 heads, 4 points), the losses and matcher
costs above; training with AdamW (lr 1e-4, weight decay 0.05, betas 0.9/0.999), backbone lr x 0.1,
no weight decay on norm layers and query/level embeddings, gradient clipping at L2 norm 0.01,
poly schedule (power 0.9, eta_min 0), batch 16 (8 GPUs x 2). Those training keys live in the
``train:`` config (``optimizer: adamw``, ``grad_clip``, ``backbone_lr_mult``, ``min_lr: 0``), see
:mod:`segaug.train.loop`.

What differs:

* the implementation is transformers' port of the original (detectron2) Mask2Former, not mmdet's;
  sizes, losses and matcher are the same, initialisation and small details (e.g. HF's pixel
  decoder levels embedding as one parameter) may differ;
* the backbone is transformers' ResNet-50 with the ``microsoft/resnet-50`` ImageNet weights
  (ResNet v1.5, stride in the 3x3 conv, like ``torchvision://resnet50`` that MMSeg loads, but a
  different training run of it); BatchNorm is plain BN on one device, not SyncBN;
* the multi-scale deformable attention of the pixel decoder is transformers' pure-PyTorch
  version (``grid_sample``), not the CUDA kernel: same maths, slower, and it also runs on CPU;
* no weight decay on norms and embeddings is done by module type (every BatchNorm, GroupNorm,
  LayerNorm, ``nn.Embedding``, and the pixel decoder's ``level_embed``); MMSeg matches names.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from segaug.errors import SegaugError

log = logging.getLogger("segaug.train")

OUTPUT_STRIDE = 32  # ResNet stage 4

# name -> (ResNet depths, hub id of its ImageNet weights)
BACKBONES = {
    "resnet50": ([3, 4, 6, 3], "microsoft/resnet-50"),
    "resnet101": ([3, 4, 23, 3], "microsoft/resnet-101"),
}
RESNET_WIDTHS = [256, 512, 1024, 2048]
STAGES = ["stage1", "stage2", "stage3", "stage4"]

# MMSeg mask2former_r50_8xb2 values; the keys a model config may set
DEFAULTS = {
    "backbone": "resnet50",
    "backbone_weights": "imagenet",
    "hidden_dim": 256,
    "num_queries": 100,
    "decoder_layers": 9,
    "encoder_layers": 6,
    "feature_size": 256,
    "mask_feature_size": 256,
    "num_attention_heads": 8,
    "dim_feedforward": 2048,
    "encoder_feedforward_dim": 1024,
    "train_num_points": 12544,
    "freeze_backbone_norm": True,
    "tiny": False,
}
TINY = {
    "hidden_dim": 32,
    "num_queries": 10,
    "decoder_layers": 2,
    "encoder_layers": 1,
    "feature_size": 32,
    "mask_feature_size": 32,
    "num_attention_heads": 4,
    "dim_feedforward": 64,
    "encoder_feedforward_dim": 64,
    "train_num_points": 1024,
}
TINY_RESNET = {"depths": [1, 1, 1, 1], "hidden_sizes": [16, 32, 64, 128], "embedding_size": 16}
NO_DECAY_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.Embedding)


@contextmanager
def _quiet(name: str):
    """Silence a transformers logger below ERROR for a moment (expected, harmless warnings)."""
    lg = logging.getLogger(name)
    level = lg.level
    lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        lg.setLevel(level)


def resolve_cfg(cfg: dict) -> dict:
    """Defaults + the keys of a model config (``arch`` removed); unknown keys are an error.

    ``encoder_weights: null`` is accepted as ``backbone_weights: null``: that is what
    :func:`segaug.train.evaluate.load_model` adds to rebuild a trained model without download.
    """
    cfg = {k: v for k, v in cfg.items() if k != "arch"}
    if "encoder_weights" in cfg:
        if cfg.pop("encoder_weights") is not None:
            raise SegaugError("model config: Mask2Former takes backbone_weights, not encoder_weights")
        cfg["backbone_weights"] = None
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise SegaugError(f"model config: unknown key(s) {unknown} for Mask2Former; known: {sorted(DEFAULTS)}")
    out = {**DEFAULTS, **(TINY if cfg.get("tiny") else {}), **cfg}
    if out["backbone"] not in BACKBONES:
        raise SegaugError(
            f"model config: Mask2Former backbone {out['backbone']!r} unknown; choose one of {', '.join(BACKBONES)}"
        )
    if out["backbone_weights"] not in (None, "imagenet"):
        raise SegaugError(f"model config: backbone_weights must be 'imagenet' or null, got {out['backbone_weights']!r}")
    if out["tiny"] and out["backbone_weights"] is not None:
        raise SegaugError("model config: tiny Mask2Former has no pretrained backbone; set backbone_weights: null")
    for k in (
        "hidden_dim",
        "num_queries",
        "decoder_layers",
        "encoder_layers",
        "feature_size",
        "mask_feature_size",
        "num_attention_heads",
        "dim_feedforward",
        "encoder_feedforward_dim",
        "train_num_points",
    ):
        if not isinstance(out[k], int) or isinstance(out[k], bool) or out[k] < 1:
            raise SegaugError(f"model config: Mask2Former {k} must be a positive integer, got {out[k]!r}")
    return out


def hf_config(cfg: dict, num_classes: int):
    """The transformers ``Mask2FormerConfig`` of a resolved config."""
    from transformers import Mask2FormerConfig, ResNetConfig

    depths, _ = BACKBONES[cfg["backbone"]]
    sizes = TINY_RESNET if cfg["tiny"] else {"depths": depths, "hidden_sizes": RESNET_WIDTHS, "embedding_size": 64}
    backbone = ResNetConfig(layer_type="bottleneck", out_features=STAGES, **sizes)
    # transformers warns that only Swin is "supported"; a ResNet backbone works (stage1-4 at
    # strides 4-32, as in the original R50 Mask2Former)
    with _quiet("transformers.models.mask2former.configuration_mask2former"):
        return Mask2FormerConfig(
            backbone_config=backbone,
            num_labels=int(num_classes),
            hidden_dim=cfg["hidden_dim"],
            num_queries=cfg["num_queries"],
            decoder_layers=cfg["decoder_layers"] + 1,  # transformers builds decoder_layers - 1
            encoder_layers=cfg["encoder_layers"],
            feature_size=cfg["feature_size"],
            mask_feature_size=cfg["mask_feature_size"],
            num_attention_heads=cfg["num_attention_heads"],
            dim_feedforward=cfg["dim_feedforward"],
            encoder_feedforward_dim=cfg["encoder_feedforward_dim"],
            train_num_points=cfg["train_num_points"],
        )


def semantic_to_masks(
    target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per image of ``target`` (B x H x W class ids): the classes present (sorted, ignore pixels
    left out) and one float mask per class, ``[n_i, H, W]``; an image with no valid pixel gets
    ``n_i = 0`` (its queries are all trained towards "no object")."""
    masks, classes = [], []
    for t in target:
        present = torch.unique(t)
        present = present[present != ignore_index]
        if len(present) and (present.min() < 0 or present.max() >= num_classes):
            raise SegaugError(f"label values {present.tolist()} outside 0..{num_classes - 1} and ignore {ignore_index}")
        classes.append(present.long())
        masks.append((t[None] == present[:, None, None]).float())
    return masks, classes


class Mask2FormerSeg(nn.Module):
    """transformers' ``Mask2FormerForUniversalSegmentation`` as a semantic-segmentation model."""

    output_stride = OUTPUT_STRIDE  # whole-image inference pads inputs to a multiple of this

    def __init__(self, cfg: dict, num_classes: int):
        super().__init__()
        from transformers import Mask2FormerForUniversalSegmentation

        self.cfg = resolve_cfg(cfg)
        self.num_classes = int(num_classes)
        self.hf = Mask2FormerForUniversalSegmentation(hf_config(self.cfg, num_classes))
        if self.cfg["freeze_backbone_norm"]:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._NormBase):
                    m.weight.requires_grad_(False)
                    m.bias.requires_grad_(False)

    @property
    def backbone(self) -> nn.Module:
        return self.hf.model.pixel_level_module.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.hf(pixel_values=x)
        return semantic_scores(out.class_queries_logits, out.masks_queries_logits, x.shape[-2:])

    def loss(self, x: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
        """transformers' Mask2Former loss (matching + class/mask/dice, auxiliary layers included)
        for images ``x`` and semantic labels ``target`` (B x H x W, ``ignore_index`` ignored)."""
        masks, classes = semantic_to_masks(target, self.num_classes, ignore_index)
        out = self.hf(pixel_values=x, mask_labels=masks, class_labels=classes)
        return out.loss

    def param_groups(self, lr: float, weight_decay: float, backbone_lr_mult: float = 0.1) -> list[dict]:
        """Optimizer groups of the MMSeg recipe: backbone at ``lr * backbone_lr_mult``; no weight
        decay on norm layers and embeddings. The head groups come first, so group 0 carries the
        base lr (what the training curve logs). Frozen parameters are left out."""
        backbone = {id(p) for p in self.backbone.parameters()}
        no_decay = {id(p) for n, p in self.named_parameters() if n.endswith(".level_embed")}
        for m in self.modules():  # (the pixel decoder's level_embed is a bare nn.Parameter)
            if isinstance(m, NO_DECAY_TYPES):
                no_decay.update(id(p) for p in m.parameters(recurse=False))
        groups = {}
        for p in self.parameters():
            if not p.requires_grad:
                continue
            key = ("backbone" if id(p) in backbone else "head", id(p) in no_decay)
            groups.setdefault(key, []).append(p)
        out = []
        for part in ("head", "backbone"):
            for nd in (False, True):
                params = groups.get((part, nd))
                if params:
                    out.append(
                        {
                            "name": f"{part}{'_no_decay' if nd else ''}",
                            "params": params,
                            "lr": lr * (backbone_lr_mult if part == "backbone" else 1.0),
                            "weight_decay": 0.0 if nd else weight_decay,
                        }
                    )
        return out


def semantic_scores(class_logits, mask_logits, size) -> torch.Tensor:
    """``[B, C, H, W]`` per-class scores from ``[B, Q, C+1]`` class and ``[B, Q, h, w]`` mask
    logits: masks upsampled to ``size`` first, then weighted by the class probabilities."""
    masks = F.interpolate(mask_logits, size=tuple(size), mode="bilinear", align_corners=False)
    probs = class_logits.softmax(-1)[..., :-1]
    return torch.einsum("bqc,bqhw->bchw", probs, masks.sigmoid())


def load_backbone_weights(model: Mask2FormerSeg) -> None:
    """Load the ImageNet weights of the configured ResNet (``microsoft/resnet-50``) into the
    backbone; offline and not cached -> SegaugError naming the id and ``snakemake prefetch``."""
    from transformers import ResNetBackbone

    from segaug.generative.hub import resolve

    _, ref = BACKBONES[model.cfg["backbone"]]
    ref = resolve(ref, what=f"Mask2Former backbone weights ({model.cfg['backbone']})")
    try:
        # the checkpoint is ResNetForImageClassification: its classifier keys are "unexpected"
        # (the load report says so at WARNING level); missing keys are checked below
        with _quiet("transformers"):
            src, info = ResNetBackbone.from_pretrained(ref, out_features=STAGES, output_loading_info=True)
    except Exception as e:
        raise SegaugError(
            f"cannot load the ImageNet weights {ref!r} of the Mask2Former backbone "
            f"({type(e).__name__}: {e}); run `snakemake prefetch` on a machine with internet, "
            "or set backbone_weights: null to train from random initialisation"
        ) from None
    missing = sorted(info.get("missing_keys") or [])
    if not missing:
        missing, unexpected = model.backbone.load_state_dict(src.state_dict(), strict=False)
        missing = sorted(missing) + sorted(unexpected)
    if missing:
        raise SegaugError(
            f"{ref}: weights do not fit the {model.cfg['backbone']} backbone "
            f"(keys missing or unexpected: {missing[:3]}...)"
        )
    log.info("Mask2Former backbone: ImageNet weights of %s", ref)


def build(cfg: dict, num_classes: int) -> Mask2FormerSeg:
    """The model a config describes (see the module docstring), backbone weights loaded."""
    model = Mask2FormerSeg(cfg, num_classes)
    if model.cfg["backbone_weights"] == "imagenet":
        load_backbone_weights(model)
    return model


def pretrained_ids(cfg: dict) -> list[str]:
    """Hub ids a config needs in the Hugging Face cache (for the prefetch step)."""
    c = resolve_cfg(cfg)
    return [BACKBONES[c["backbone"]][1]] if c["backbone_weights"] == "imagenet" else []
