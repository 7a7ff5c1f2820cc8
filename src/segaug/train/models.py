"""Model factory over segmentation-models-pytorch (and Mask2Former, see below).

A model config is a plain dict::

    {"arch": "DeepLabV3Plus", "encoder": "resnet50", "encoder_weights": "imagenet",
     "encoder_output_stride": 16, ...any other keyword of that smp architecture}

``arch`` is any smp architecture name (case-insensitive: Unet, FPN, PSPNet, DeepLabV3,
DeepLabV3Plus, UPerNet, Segformer, ...). Extra keys are checked against the architecture's
signature, so a misspelt key is an error instead of being silently ignored. For architectures
that take no ``encoder_output_stride`` (PSPNet, FPN, ...), that key is passed to the encoder as
its output stride (dilated last stages), e.g. an MMSegmentation-like dilated PSPNet::

    {"arch": "PSPNet", "encoder": "resnet50", "encoder_depth": 5, "encoder_output_stride": 8}

The paper's MMSegmentation models (R50-D8) are reproduced layer for layer with three keys:

* ``encoder: tu-resnet50c`` -- ResNet-50-V1c (deep stem: three 3x3 convolutions) through smp's
  timm encoders; with ``encoder_output_stride: 8`` its last two stages are dilated (2, 4) as
  in R50-D8. Its parameters equal mmseg's ``ResNetV1c(depth=50)`` to the parameter.
* ``aux_head`` -- MMSegmentation's auxiliary ``FCNHead`` on stage-3 features (1024 channels at
  stride 8): 3x3 conv to ``channels`` (256) + BN + ReLU, dropout 0.1, 1x1 conv to the classes;
  its loss (the model's pixel-wise loss on the upsampled logits) is added with ``weight`` 0.4.
  Training only: in eval mode the model returns the main logits alone. ``aux_head: true``
  means ``{"channels": 256, "weight": 0.4, "dropout": 0.1}``; any of them can be given.
* ``head: mmseg`` (DeepLabV3Plus, PSPNet) -- mmseg's own decode heads
  (:mod:`segaug.train.mmseg_heads`: 512-channel separable ASPP, PSP with a 3x3 bottleneck)
  instead of smp's narrower decoders; keys ``encoder_output_stride`` (8), ``decoder_channels``
  (512), ``dropout`` (0.1). With ``tu-resnet50c`` and ``aux_head`` the model is mmseg's R50-D8
  to the parameter.

``backend: mmseg`` builds the model of an MMSegmentation config instead
(:mod:`segaug.train.mmseg_backend`; needs the mmseg env).

``arch: Mask2Former`` is not an smp model: it builds
:class:`segaug.train.mask2former.Mask2FormerSeg` (transformers' Mask2Former, ResNet backbone),
whose config keys are listed in that module. It computes its own loss (:func:`has_own_loss`) and
gives its own optimizer groups.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch

from segaug.device import resolve_device  # noqa: F401  (re-exported)
from segaug.errors import SegaugError

MODEL_KEYS = ("arch", "encoder", "encoder_weights", "aux_head")
AUX_DEFAULTS = {"channels": 256, "weight": 0.4, "dropout": 0.1}


def aux_head_cfg(value) -> dict | None:
    """The resolved ``aux_head`` of a model config (None: no auxiliary head)."""
    if value is None or value is False:
        return None
    if value is True:
        return dict(AUX_DEFAULTS)
    if not isinstance(value, dict) or set(value) - set(AUX_DEFAULTS):
        raise SegaugError(
            f"model config: aux_head must be true, false or a mapping with keys {sorted(AUX_DEFAULTS)}, got {value!r}"
        )
    cfg = {**AUX_DEFAULTS, **value}
    if not (
        isinstance(cfg["channels"], int) and cfg["channels"] > 0 and cfg["weight"] >= 0 and 0 <= cfg["dropout"] < 1
    ):
        raise SegaugError(f"model config: aux_head needs channels > 0, weight >= 0, 0 <= dropout < 1, got {cfg}")
    return cfg


class FCNAuxHead(torch.nn.Module):
    """mmseg ``FCNHead(num_convs=1, concat_input=False, kernel_size=3)`` as an auxiliary head."""

    def __init__(self, in_channels: int, channels: int, num_classes: int, dropout: float):
        super().__init__()
        nn = torch.nn
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x):
        return self.conv_seg(self.dropout(self.convs(x)))


class WithAuxHead(torch.nn.Module):
    """An smp model plus an auxiliary FCN head on its encoder's stage-3 features.

    ``forward`` returns the main logits in eval mode and ``(logits, aux_logits)`` in training
    mode (aux logits at the feature resolution; :meth:`aux_loss_weight` weighs their loss).
    """

    def __init__(self, model: torch.nn.Module, num_classes: int, aux: dict):
        super().__init__()
        self.model = model
        in_channels = model.encoder.out_channels[-2]  # stage 3 (C4): 1024 for ResNet-50
        self.aux_head = FCNAuxHead(in_channels, int(aux["channels"]), num_classes, float(aux["dropout"]))
        self.aux_weight = float(aux["weight"])

    @property
    def encoder(self):
        return self.model.encoder

    @property
    def requires_divisible_input_shape(self):
        return getattr(self.model, "requires_divisible_input_shape", True)

    def forward(self, x):
        m = self.model
        features = m.encoder(x)
        if hasattr(m, "logits"):  # mmseg_heads.EncoderWithHead
            logits = m.logits(features, x.shape[-2:])
        else:
            logits = m.segmentation_head(m.decoder(features))
        if not self.training:
            return logits
        return logits, self.aux_head(features[-2])


def aux_loss(criterion, out, target: torch.Tensor, weight: float) -> torch.Tensor:
    """Main loss + ``weight`` x the loss of the aux logits upsampled (bilinear) to the label."""
    logits, aux = out
    aux = torch.nn.functional.interpolate(aux, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return criterion(logits, target) + weight * criterion(aux, target)


def _arch_name(cfg) -> str:
    return str(cfg.get("arch", "")).lower() if isinstance(cfg, dict) else ""


BACKENDS = ("smp", "mmseg")


def backend(model_cfg) -> str:
    """The backend of a model config: ``smp`` (the default; Mask2Former on transformers) or
    ``mmseg``; anything else is a SegaugError."""
    name = model_cfg.get("backend", "smp") if isinstance(model_cfg, dict) else "smp"
    if name not in BACKENDS:
        raise SegaugError(f"model config: backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    return name


def _load(ref):
    if callable(ref):
        return ref
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)


@dataclass(frozen=True)
class ModelFamily:
    """A kind of model: which configs it takes, how to build one (a function or its
    ``"module:function"``, imported when used), whether it trains with its own loss
    (``model.loss(x, target)``) rather than a pixel-wise loss of :mod:`segaug.train.losses`,
    which backend trains it (``train``: the function :func:`segaug.train.loop.train` hands the
    run to) and how a model file of it is loaded (``load``: default, build it and load the
    weights). This registry is the only dispatch on the kind of model. A new family is one
    module with its ``build(cfg, num_classes)`` and a :func:`register_family` line below."""

    name: str
    matches: Callable[[dict], bool]
    build: Callable[[dict, int], torch.nn.Module] | str
    own_loss: bool = False
    train: str = "segaug.train.loop:train_lightning"
    load: str | None = None  # "module:function" (model file dict -> model), or None

    def build_function(self) -> Callable[[dict, int], torch.nn.Module]:
        return _load(self.build)

    def train_function(self) -> Callable:
        return _load(self.train)

    def load_function(self) -> Callable | None:
        return _load(self.load) if self.load else None


MODEL_FAMILIES: list[ModelFamily] = []  # the first family whose ``matches`` is true builds it


def register_family(family: ModelFamily, first: bool = False) -> ModelFamily:
    MODEL_FAMILIES.insert(0, family) if first else MODEL_FAMILIES.append(family)
    return family


def model_family(cfg: dict) -> ModelFamily:
    return next(f for f in MODEL_FAMILIES if f.matches(cfg))


def has_own_loss(cfg: dict) -> bool:
    """Whether the model of ``cfg`` trains with its own ``loss(x, target)`` (Mask2Former's
    matching losses) instead of a pixel-wise loss from :mod:`segaug.train.losses`."""
    return isinstance(cfg, dict) and "arch" in cfg and model_family(cfg).own_loss


def _arch_class(arch: str):
    import segmentation_models_pytorch as smp

    try:
        return smp.MODEL_ARCHITECTURES_MAPPING[arch.lower()]
    except KeyError:
        names = [a.__name__ for a in smp.MODEL_ARCHITECTURES_MAPPING.values()]
        raise SegaugError(
            f"model config: unknown arch {arch!r}; segmentation-models-pytorch has "
            f"{', '.join(names)}; segaug adds Mask2Former (transformers)"
        ) from None


def _is_download_error(e: BaseException) -> bool:
    mod = type(e).__module__ or ""
    return mod.startswith(("huggingface_hub", "requests", "urllib3", "httpx")) or isinstance(
        e, (OSError, ConnectionError, TimeoutError)
    )


def create_model(cfg: dict, num_classes: int) -> torch.nn.Module:
    """Build the smp model (or Mask2Former) a config describes, with ``num_classes`` outputs.

    Raises SegaugError for an unknown arch, encoder, weights name or keyword, and for
    pretrained weights that cannot be fetched (offline and not in the Hugging Face cache).
    """
    if not isinstance(cfg, dict) or "arch" not in cfg:
        raise SegaugError(f"model config must be a mapping with an 'arch' key, got {cfg!r}")
    return model_family(cfg).build_function()(cfg, num_classes)


def _build_smp(cfg: dict, num_classes: int) -> torch.nn.Module:
    """segmentation-models-pytorch: any smp arch and encoder, smp's or mmseg's decode head,
    the auxiliary FCN head (the R50-D8 recipe)."""
    import segmentation_models_pytorch as smp

    cfg = dict(cfg)
    aux = aux_head_cfg(cfg.pop("aux_head", None))
    head = cfg.pop("head", "smp")
    arch = str(cfg.pop("arch"))
    encoder = str(cfg.pop("encoder", "resnet50"))
    weights = cfg.pop("encoder_weights", None)
    if head not in ("smp", "mmseg"):
        raise SegaugError(f"model config: head must be smp or mmseg, got {head!r}")
    if head == "mmseg":
        make = _mmseg_head_model(arch, encoder, weights, cfg, num_classes)
        return _with_download_errors(make, encoder, weights, arch, aux, num_classes)
    cls = _arch_class(arch)
    params = inspect.signature(cls.__init__).parameters
    if "encoder_output_stride" in cfg and "encoder_output_stride" not in params:
        cfg["output_stride"] = cfg.pop("encoder_output_stride")
    allowed = set(params) - {"self", "kwargs", "encoder_name", "encoder_weights", "classes"}
    allowed.add("output_stride")  # forwarded to smp's get_encoder
    unknown = sorted(set(cfg) - allowed)
    if unknown and not encoder.startswith("tu-"):  # tu- encoders take timm keywords
        raise SegaugError(
            f"model config: unknown key(s) {unknown} for {cls.__name__}; "
            f"known: {sorted(set(MODEL_KEYS) | allowed | {'encoder_output_stride'})}"
        )

    def make():
        return smp.create_model(cls.__name__, encoder_name=encoder, encoder_weights=weights, classes=num_classes, **cfg)

    return _with_download_errors(make, encoder, weights, cls.__name__, aux, num_classes)


def _mmseg_head_model(arch: str, encoder: str, weights, cfg: dict, num_classes: int):
    """``head: mmseg``: an smp encoder with mmseg's decode head (:mod:`.mmseg_heads`)."""
    from segaug.train import mmseg_heads

    name = arch.lower()
    if name not in mmseg_heads.HEADS:
        raise SegaugError(f"model config: head: mmseg is for DeepLabV3Plus and PSPNet, got arch {arch!r}")
    stride = cfg.pop("encoder_output_stride", 8)
    depth = cfg.pop("encoder_depth", 5)
    channels = cfg.pop("decoder_channels", 512)
    dropout = cfg.pop("dropout", 0.1)
    if cfg or depth != 5:
        raise SegaugError(
            f"model config: with head: mmseg the keys are encoder, encoder_weights, "
            f"encoder_output_stride, decoder_channels, dropout, aux_head (encoder_depth 5); "
            f"got {sorted(cfg) or f'encoder_depth {depth}'}"
        )

    def make():
        import segmentation_models_pytorch as smp

        enc = smp.encoders.get_encoder(encoder, in_channels=3, depth=5, weights=weights, output_stride=stride)
        return mmseg_heads.build(name, enc, num_classes, int(channels), float(dropout))

    return make


def _with_download_errors(make, encoder, weights, arch_name, aux, num_classes):
    """``make()`` (+ the auxiliary head), smp's and the hub's errors as SegaugErrors."""
    try:
        model = make()
        return WithAuxHead(model, num_classes, aux) if aux else model
    except KeyError as e:  # smp: wrong encoder name or weights name
        raise SegaugError(f"model config: {e.args[0] if e.args else e}") from None
    except Exception as e:
        if weights is not None and _is_download_error(e):
            raise SegaugError(
                f"cannot fetch pretrained weights {weights!r} for encoder {encoder!r} "
                f"({type(e).__name__}); download them once on a machine with internet into the "
                "Hugging Face cache (HF_HOME) shared with this job, or set encoder_weights: null "
                "to train from random initialisation"
            ) from None
        if isinstance(e, (TypeError, ValueError)):
            raise SegaugError(f"model config for {arch_name}/{encoder}: {e}") from None
        raise


def output_stride(model: torch.nn.Module) -> int:
    """Down-sampling factor of the model's deepest features (32 if unknown)."""
    own = getattr(model, "output_stride", None)  # Mask2FormerSeg; smp keeps it on the encoder
    if isinstance(own, int):
        return own
    enc = getattr(model, "encoder", None)
    return int(getattr(enc, "output_stride", 32))


def pad_multiple(model: torch.nn.Module) -> int:
    """Input height and width must be multiples of this for whole-image inference."""
    if getattr(model, "requires_divisible_input_shape", True) is False:
        return 1
    return output_stride(model)


def _logits(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def predict_whole(model: torch.nn.Module, image: torch.Tensor, multiple: int, out_size=None) -> torch.Tensor:
    """Whole-image inference: pad N x C x H x W (bottom/right, with 0 = the mean colour after
    normalisation) to a multiple of ``multiple``, run the model, crop the logits back to H x W
    and, if ``out_size`` differs, resize them bilinearly to ``out_size`` (the label's size)."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    x = torch.nn.functional.pad(image, (0, pw, 0, ph), value=0.0) if (ph or pw) else image
    logits = _logits(model(x))[..., :h, :w]
    if out_size is not None and tuple(out_size) != (h, w):
        logits = torch.nn.functional.interpolate(
            logits.float(), size=tuple(out_size), mode="bilinear", align_corners=False
        )
    return logits


register_family(
    ModelFamily(
        "mmseg",
        lambda c: backend(c) == "mmseg",
        "segaug.train.mmseg_backend:create_model",
        train="segaug.train.mmseg_backend:train",
        load="segaug.train.mmseg_backend:load_model",
    )
)
register_family(
    ModelFamily(
        "mask2former", lambda c: _arch_name(c) == "mask2former", "segaug.train.mask2former:build", own_loss=True
    )
)
register_family(ModelFamily("smp", lambda c: True, _build_smp))
