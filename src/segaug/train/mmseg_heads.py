"""MMSegmentation's R50-D8 decode heads in plain PyTorch, on an smp encoder (``head: mmseg``).

smp's own DeepLabV3+ and PSPNet decoders are the same designs as mmseg's but narrower (256-channel
ASPP and decoder; 1x1 fusion of the pyramid). With ``head: mmseg`` a DeepLabV3Plus or PSPNet
model config gets mmseg's heads instead, layer for layer (``ConvModule`` = conv without bias +
BN + ReLU; ``DepthwiseSeparableConvModule`` = depthwise then pointwise ``ConvModule``):

* DeepLabV3+ = ``DepthwiseSeparableASPPHead(in_channels=2048, channels=512,
  dilations=(1, 12, 24, 36), c1_in_channels=256, c1_channels=48, dropout_ratio=0.1)``: image
  pooling + 1x1 + three separable 3x3 atrous branches on stage 4, a 3x3 bottleneck, the stage-1
  skip reduced to 48 channels, two separable 3x3 convs, dropout, 1x1 classifier;
* PSPNet = ``PSPHead(in_channels=2048, channels=512, pool_scales=(1, 2, 3, 6),
  dropout_ratio=0.1)``: pooled 1x1 branches, concatenated with stage 4, a 3x3 bottleneck,
  dropout, 1x1 classifier.

Resizing is bilinear with ``align_corners=False`` (mmseg's ``resize``), and the logits are
resized to the input. With ResNet-50-V1c (``tu-resnet50c``, output stride 8) and the auxiliary
FCN head the models have mmseg's parameter counts to the parameter (tests/test_train.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _resize(x, size):
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ConvModule(nn.Sequential):
    def __init__(self, cin, cout, k=1, dilation=1, groups=1):
        pad = dilation * (k // 2)
        super().__init__(
            nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class SeparableConvModule(nn.Sequential):
    def __init__(self, cin, cout, k=3, dilation=1):
        super().__init__(ConvModule(cin, cin, k, dilation, groups=cin), ConvModule(cin, cout, 1))


class _Classifier(nn.Module):
    def __init__(self, channels, num_classes, dropout):
        super().__init__()
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x):
        return self.conv_seg(self.dropout(x))


class ASPPHead(nn.Module):
    """mmseg ``DepthwiseSeparableASPPHead`` on (stage 1, stage 4) features."""

    def __init__(
        self,
        in_channels,
        c1_in_channels,
        num_classes,
        channels=512,
        c1_channels=48,
        dilations=(1, 12, 24, 36),
        dropout=0.1,
    ):
        super().__init__()
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvModule(in_channels, channels, 1))
        self.aspp_modules = nn.ModuleList(
            ConvModule(in_channels, channels, 1)
            if d == 1
            else SeparableConvModule(in_channels, channels, 3, dilation=d)
            for d in dilations
        )
        self.bottleneck = ConvModule((len(dilations) + 1) * channels, channels, 3)
        self.c1_bottleneck = ConvModule(c1_in_channels, c1_channels, 1)
        self.sep_bottleneck = nn.Sequential(
            SeparableConvModule(channels + c1_channels, channels, 3),
            SeparableConvModule(channels, channels, 3),
        )
        self.cls = _Classifier(channels, num_classes, dropout)

    def forward(self, features):
        c1, x = features[2], features[-1]  # stride 4 (stage 1), stage 4
        outs = [_resize(self.image_pool(x), x.shape[2:])] + [m(x) for m in self.aspp_modules]
        out = _resize(self.bottleneck(torch.cat(outs, 1)), c1.shape[2:])
        out = self.sep_bottleneck(torch.cat([out, self.c1_bottleneck(c1)], 1))
        return self.cls(out)


class PSPHead(nn.Module):
    """mmseg ``PSPHead`` on stage-4 features."""

    def __init__(self, in_channels, num_classes, channels=512, pool_scales=(1, 2, 3, 6), dropout=0.1):
        super().__init__()
        self.psp_modules = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(in_channels, channels, 1)) for s in pool_scales
        )
        self.bottleneck = ConvModule(in_channels + len(pool_scales) * channels, channels, 3)
        self.cls = _Classifier(channels, num_classes, dropout)

    def forward(self, features):
        x = features[-1]
        outs = [x] + [_resize(m(x), x.shape[2:]) for m in self.psp_modules]
        return self.cls(self.bottleneck(torch.cat(outs, 1)))


class EncoderWithHead(nn.Module):
    """An smp encoder and an mmseg-style decode head: ``x -> logits`` at the input's size."""

    def __init__(self, encoder: nn.Module, decode_head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decode_head = decode_head

    def logits(self, features, size):
        return _resize(self.decode_head(features), size)

    def forward(self, x):
        return self.logits(self.encoder(x), x.shape[-2:])


HEADS = {"deeplabv3plus": "ASPPHead", "pspnet": "PSPHead"}


def build(
    arch: str, encoder: nn.Module, num_classes: int, channels: int = 512, dropout: float = 0.1
) -> EncoderWithHead:
    ch = encoder.out_channels
    if arch == "deeplabv3plus":
        head = ASPPHead(ch[-1], ch[2], num_classes, channels=channels, dropout=dropout)
    else:
        head = PSPHead(ch[-1], num_classes, channels=channels, dropout=dropout)
    return EncoderWithHead(encoder, head)
