"""The generators of the paper's Table 6: SDXL + T2I-Adapter, SDXL + ControlNet, SDXL inpainting.

One interface for all three. A :class:`GenJob` is one synthetic image to make (source image,
prompt, seed, and the blended visual prior or the inpainting mask); :class:`Generator` loads
the diffusers pipeline once and turns a list of jobs into a list of :class:`GenResult`.

How one batch of jobs becomes images (:meth:`Generator.generate`):

1. **Generation size.** Each job is generated at ``resolution`` on its long side, keeping the
   source's aspect ratio, both sides rounded to a multiple of ``multiple_of`` (64 for the real
   SDXL at 1024 px; the VAE needs a multiple of 8, the T2I-Adapter-XL a multiple of 16, its
   pixel-unshuffle factor). Jobs are grouped by that size and each group is cut into batches
   of ``batch_size``.
2. **Conditions.** The prior (adapter, ControlNet) is resized to the generation size and
   replicated to 3 channels (white edges on black, what both were trained on); the image and
   mask (inpainting) are resized likewise (mask: nearest neighbour, white = repaint).
3. **One pipeline call per batch** with a list of prompts, a list of conditions and a *list*
   of ``torch.Generator`` (one per job, seeded with the job's seed). Diffusers draws each
   image's initial noise (and, for inpainting, its VAE samples) from that image's own
   generator, so an image depends only on its own seed, not on its neighbours in the batch:
   on CPU, job A alone and A batched with B agree to ~1e-6 in float (at most 1 grey level
   in uint8, from float rounding of batched matrix products). Exact bytes are reproducible
   for the same seed *and* the same batch composition.
4. **Checks.** The pipeline returns floats (``output_type="np"``), so a NaN from an fp16
   overflow is seen before the uint8 conversion hides it. A NaN or an all-black output (the
   other face of the same failure) is regenerated with a new seed derived from the job's seed
   and the attempt number (:func:`attempt_seed`); after ``max_attempts`` bad outputs the job
   fails with a :class:`SegaugError` naming its prompt and seeds.
5. **Back to the source size.** The output is resized to the source's HxW (area when
   shrinking, bicubic when enlarging), so it pairs pixel for pixel with the source label.

Config keys (:data:`DEFAULTS`; the paper's settings unless said otherwise):

``pipeline``            ``sdxl_adapter`` | ``sdxl_controlnet`` | ``sdxl_inpaint``
``base``                SDXL base (hub id or local dir); ``null`` = the pipeline's default,
                        :data:`DEFAULT_BASE` (the inpainting model for ``sdxl_inpaint``)
``variant``             weight variant of ``base`` (e.g. ``fp16``); ``null`` = the default files
``adapter``             T2I-Adapter (``sdxl_adapter``); ``adapter_subfolder`` optional
``controlnet``          ControlNet (``sdxl_controlnet``); ``controlnet_subfolder`` optional
``vae``                 replacement VAE (e.g. ``madebyollin/sdxl-vae-fp16-fix``), ``null`` = base's
``steps``               denoising steps (30)
``guidance_scale``      classifier-free guidance scale (7.5)
``resolution``          long side of the generation size (1024)
``multiple_of``         both sides are rounded to this multiple (64; a multiple of 8, and of the
                        adapter's ``downscale_factor``, 16, for ``sdxl_adapter``)
``dtype``               ``float16`` | ``bfloat16`` | ``float32`` on CUDA; always float32 on CPU
``conditioning_scale``  adapter_conditioning_scale / controlnet_conditioning_scale (1.0)
``adapter_conditioning_factor``  fraction of the steps that get the prior (1.0); for
                        ControlNet it is ``control_guidance_end``
``negative_prompt``     (""; empty = SDXL's zero negative embedding, diffusers' default)
``batch_size``          jobs per pipeline call (1)
``max_attempts``        tries per job before giving up on NaN / black outputs (3)
``strength``            inpainting strength (0.99, as diffusers' SDXL inpainting example)

Components are loaded once in ``__init__``; every model reference goes through
:func:`segaug.generative.hub.resolve` first, so an id missing from the offline cache is one
clear error instead of a stack trace from ``from_pretrained``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field

import cv2
import numpy as np

from segaug.errors import SegaugError
from segaug.generative import hub

log = logging.getLogger(__name__)

PIPELINES = ("sdxl_adapter", "sdxl_controlnet", "sdxl_inpaint")

SDXL_BASE = "stabilityai/stable-diffusion-xl-base-1.0"
DEFAULT_BASE = {
    "sdxl_adapter": SDXL_BASE,
    "sdxl_controlnet": SDXL_BASE,
    "sdxl_inpaint": "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
}

DEFAULTS = {
    "pipeline": "sdxl_adapter",
    "base": None,
    "variant": None,
    "adapter": "TencentARC/t2i-adapter-lineart-sdxl-1.0",
    "adapter_subfolder": None,
    "controlnet": "diffusers/controlnet-canny-sdxl-1.0",
    "controlnet_subfolder": None,
    "vae": None,
    "steps": 30,
    "guidance_scale": 7.5,
    "resolution": 1024,
    "multiple_of": 64,
    "dtype": "float16",
    "conditioning_scale": 1.0,
    "adapter_conditioning_factor": 1.0,
    "negative_prompt": "",
    "batch_size": 1,
    "max_attempts": 3,
    "strength": 0.99,
}

DTYPES = ("float16", "bfloat16", "float32")


@dataclass
class GenJob:
    """One synthetic image to generate.

    ``image``  uint8 HxWx3 RGB source image (its size is the output size)
    ``prompt`` the text prompt
    ``seed``   the job's seed (see :func:`derive_seed`)
    ``prior``  uint8 HxW edge map, white edges on black (adapter / ControlNet)
    ``mask``   bool HxW, True = repaint (inpainting)
    """

    image: np.ndarray
    prompt: str
    seed: int
    prior: np.ndarray | None = None
    mask: np.ndarray | None = None


@dataclass
class GenResult:
    """A generated image (uint8, same HxW as the job's image) and how it was obtained."""

    image: np.ndarray
    seed: int  # the seed that produced ``image``
    attempts: int  # 1 = the job's own seed was good
    rejected: list[str] = field(default_factory=list)  # reasons of rejected attempts


# --------------------------------------------------------------------------- seeds and checks


def derive_seed(seed: int, image_id: str, copy: int, attempt: int = 0) -> int:
    """A stable 63-bit seed for (global seed, image id, copy, attempt).

    sha256 of the four values, so the seed of an image does not depend on the order of the
    image list or on which other images share its batch, and is the same on every machine.
    """
    key = f"{int(seed)}\x1f{image_id}\x1f{int(copy)}\x1f{int(attempt)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & ((1 << 63) - 1)


def attempt_seed(seed: int, attempt: int) -> int:
    """The seed of try ``attempt`` of a job: its own seed first, then derived retry seeds."""
    return int(seed) if attempt == 0 else derive_seed(seed, "retry", 0, attempt)


def bad_image_reason(image: np.ndarray) -> str | None:
    """``"nan"`` if any value is not finite, ``"black"`` if the image is all black, else None.

    Floats are read on the pipeline's 0..1 scale, integers on 0..255; "all black" means no
    value above 2/255 (what fp16 SDXL returns when its VAE overflows or the safety path
    blanks an image).
    """
    image = np.asarray(image)
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            return "nan"
        peak = float(image.max()) * 255.0 if image.size else 0.0
    else:
        peak = float(image.max()) if image.size else 0.0
    return "black" if peak <= 2 else None


# --------------------------------------------------------------------------- sizes and resizing


def generation_size(height: int, width: int, resolution: int, multiple_of: int) -> tuple[int, int]:
    """(h, w) with the long side ``resolution``, the aspect ratio kept, both sides rounded to
    the nearest multiple of ``multiple_of`` (at least one multiple)."""
    scale = resolution / max(height, width)

    def snap(x: float) -> int:
        return max(multiple_of, int(x / multiple_of + 0.5) * multiple_of)

    return snap(height * scale), snap(width * scale)


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a uint8 image: area averaging when shrinking, bicubic when enlarging."""
    if image.shape[:2] == (height, width):
        return image
    shrink = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def resize_prior(prior: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an edge map: area when shrinking (thin lines fade, not vanish), bilinear else."""
    if prior.shape[:2] == (height, width):
        return prior
    shrink = height * width < prior.shape[0] * prior.shape[1]
    return cv2.resize(prior, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a bool mask with nearest neighbour (stays binary)."""
    out = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return out.astype(bool)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Pipeline floats in 0..1 to uint8, rounded as diffusers' ``numpy_to_pil`` does."""
    return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)


# --------------------------------------------------------------------------- config


def check_config(cfg: dict) -> dict:
    """Merge ``cfg`` over :data:`DEFAULTS` and validate it; raise SegaugError naming the key."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise SegaugError(f"generator config: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(DEFAULTS)}")
    out = {**DEFAULTS, **cfg}
    if out["pipeline"] not in PIPELINES:
        raise SegaugError(f"generator config: pipeline {out['pipeline']!r} is not one of {', '.join(PIPELINES)}")
    if out["dtype"] not in DTYPES:
        raise SegaugError(f"generator config: dtype {out['dtype']!r} is not one of {', '.join(DTYPES)}")
    for key, low in (
        ("steps", 1),
        ("resolution", 8),
        ("multiple_of", 8),
        ("batch_size", 1),
        ("max_attempts", 1),
    ):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < low:
            raise SegaugError(f"generator config: {key} must be an integer >= {low}, got {out[key]!r}")
    if out["multiple_of"] % 8:
        raise SegaugError(
            f"generator config: multiple_of must be a multiple of 8 (the SDXL VAE's downscale), got {out['multiple_of']}"
        )
    for key in ("guidance_scale", "conditioning_scale", "adapter_conditioning_factor", "strength"):
        if not isinstance(out[key], (int, float)) or isinstance(out[key], bool):
            raise SegaugError(f"generator config: {key} must be a number, got {out[key]!r}")
    if not 0.0 < out["strength"] <= 1.0:
        raise SegaugError(f"generator config: strength must be in (0, 1], got {out['strength']}")
    if not 0.0 <= out["adapter_conditioning_factor"] <= 1.0:
        raise SegaugError(
            f"generator config: adapter_conditioning_factor must be in [0, 1], got {out['adapter_conditioning_factor']}"
        )
    if out["base"] is None:
        out["base"] = DEFAULT_BASE[out["pipeline"]]
    if not isinstance(out["negative_prompt"], str):
        raise SegaugError(f"generator config: negative_prompt must be a string, got {out['negative_prompt']!r}")
    return out


# --------------------------------------------------------------------------- loading


def _resolve(ref: str, what: str, subfolder: str | None = None) -> str:
    """hub.resolve a component, checking its subfolder's config.json when one is named."""
    return hub.resolve(ref, what, filename=f"{subfolder}/config.json" if subfolder else None)


def load_pipeline(cfg: dict, device: str, torch_dtype):
    """Load the diffusers pipeline of ``cfg["pipeline"]`` with its extra components, on ``device``.

    1. Resolve every model reference first (:func:`hub.resolve`), so a missing one fails
       before anything heavy loads.
    2. Load the extra components on their own: the adapter / ControlNet, and the replacement
       VAE when ``vae`` is set.
    3. Load the base pipeline with them passed in (the base repository need not contain
       them), move it to ``device`` and turn its progress bar off.
    """
    import diffusers
    import torch

    kind = cfg["pipeline"]
    base = _resolve(cfg["base"], "SDXL base model")
    vae = _resolve(cfg["vae"], "VAE") if cfg["vae"] else None
    if kind == "sdxl_adapter":
        sub = cfg["adapter_subfolder"]
        extra_cls, extra_name, extra = (
            diffusers.T2IAdapter,
            "adapter",
            _resolve(cfg["adapter"], "T2I-Adapter", sub),
        )
        cls = diffusers.StableDiffusionXLAdapterPipeline
    elif kind == "sdxl_controlnet":
        sub = cfg["controlnet_subfolder"]
        extra_cls, extra_name, extra = (
            diffusers.ControlNetModel,
            "controlnet",
            _resolve(cfg["controlnet"], "ControlNet", sub),
        )
        cls = diffusers.StableDiffusionXLControlNetPipeline
    else:
        extra_cls = None
        cls = diffusers.StableDiffusionXLInpaintPipeline

    parts: dict = {}
    if extra_cls is not None:
        parts[extra_name] = extra_cls.from_pretrained(extra, subfolder=sub, dtype=torch_dtype)
    if vae:
        parts["vae"] = diffusers.AutoencoderKL.from_pretrained(vae, dtype=torch_dtype)
    if kind != "sdxl_adapter":
        parts["add_watermarker"] = False  # the adapter pipeline has no watermark: keep all three alike
    if cfg["variant"]:
        parts["variant"] = cfg["variant"]
    pipe = cls.from_pretrained(base, dtype=torch_dtype, **parts)

    if kind == "sdxl_inpaint" and pipe.unet.config.in_channels not in (4, 9):
        raise SegaugError(
            f"{cfg['base']}: an inpainting UNet has 4 or 9 input channels, not {pipe.unet.config.in_channels}"
        )
    if pipe.vae.config.force_upcast and pipe.vae.dtype == torch.float32:
        # the VAE already runs in float32: skip diffusers' no-op upcast (and its vae.to() warnings)
        pipe.vae.register_to_config(force_upcast=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


# --------------------------------------------------------------------------- the generator


class Generator:
    """Generate synthetic images with one of :data:`PIPELINES`; components load once.

    ``cfg`` holds the keys of :data:`DEFAULTS` (see the module docstring); ``device`` is
    ``auto`` (CUDA when visible), ``cpu`` or ``cuda``.
    """

    def __init__(self, cfg: dict, device: str = "auto"):
        import torch

        from segaug.device import resolve_device

        self.cfg = check_config(cfg)
        self.device = resolve_device(device)
        dtype = self.cfg["dtype"]
        if self.device == "cpu" and dtype != "float32":
            log.info("dtype %s is for CUDA; using float32 on cpu", dtype)
            dtype = "float32"
        self.torch_dtype = getattr(torch, dtype)
        self.pipeline = self.cfg["pipeline"]
        log.info("loading %s from %s on %s (%s)", self.pipeline, self.cfg["base"], self.device, dtype)
        self.pipe = load_pipeline(self.cfg, self.device, self.torch_dtype)
        self._check_multiple()

    # -- public

    def generate(self, jobs: list[GenJob]) -> list[GenResult]:
        """Generate one image per job, in the jobs' order (see the module docstring's steps)."""
        jobs = list(jobs)
        for i, job in enumerate(jobs):
            self._check_job(i, job)
        results: list[GenResult | None] = [None] * len(jobs)
        for size, batch in self._batches(jobs):
            for i, res in zip(batch, self._generate_batch([jobs[i] for i in batch], size)):
                results[i] = res
        return results  # type: ignore[return-value]

    # -- steps

    def _check_multiple(self) -> None:
        """The adapter pixel-unshuffles its input: sides must be multiples of its factor."""
        factor = getattr(getattr(self.pipe, "adapter", None), "downscale_factor", 1)
        if self.cfg["multiple_of"] % factor:
            raise SegaugError(
                f"generator config: multiple_of {self.cfg['multiple_of']} is not a multiple of the adapter's "
                f"downscale_factor {factor} ({self.cfg['adapter']}); use multiple_of: {factor} or a multiple of it"
            )

    def _check_job(self, index: int, job: GenJob) -> None:
        """Shapes and dtypes of one job; the condition its pipeline needs must be present."""
        img = np.asarray(job.image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise SegaugError(
                f"job {index} ({job.prompt!r}): image must be uint8 HxWx3 RGB, got {img.dtype} {img.shape}"
            )
        need = "mask" if self.pipeline == "sdxl_inpaint" else "prior"
        cond = getattr(job, need)
        if cond is None:
            raise SegaugError(f"job {index} ({job.prompt!r}): pipeline {self.pipeline} needs a {need}")
        cond = np.asarray(cond)
        if cond.shape != img.shape[:2]:
            raise SegaugError(
                f"job {index} ({job.prompt!r}): {need} is {cond.shape}, expected the image's HxW {img.shape[:2]}"
            )
        if need == "prior" and cond.dtype != np.uint8:
            raise SegaugError(f"job {index} ({job.prompt!r}): prior must be a uint8 edge map, got {cond.dtype}")

    def _batches(self, jobs: list[GenJob]):
        """(generation size, job indices) batches: jobs grouped by size, cut to batch_size."""
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            h, w = job.image.shape[:2]
            groups[generation_size(h, w, self.cfg["resolution"], self.cfg["multiple_of"])].append(i)
        n = self.cfg["batch_size"]
        for size, idx in groups.items():
            for k in range(0, len(idx), n):
                yield size, idx[k : k + n]

    def _generate_batch(self, jobs: list[GenJob], size: tuple[int, int]) -> list[GenResult]:
        """Generate a batch; regenerate bad outputs with retry seeds until max_attempts."""
        done: list[GenResult | None] = [None] * len(jobs)
        rejected: list[list[str]] = [[] for _ in jobs]
        tried: list[list[int]] = [[] for _ in jobs]
        pending = list(range(len(jobs)))
        for attempt in range(self.cfg["max_attempts"]):
            seeds = [attempt_seed(jobs[i].seed, attempt) for i in pending]
            images = self._call_pipeline([jobs[i] for i in pending], seeds, size)
            still = []
            for i, seed, image in zip(pending, seeds, images):
                tried[i].append(seed)
                reason = bad_image_reason(image)
                if reason:
                    rejected[i].append(reason)
                    log.warning(
                        "rejected %s output for %r (seed %d, attempt %d)",
                        reason,
                        jobs[i].prompt,
                        seed,
                        attempt + 1,
                    )
                    still.append(i)
                    continue
                h, w = jobs[i].image.shape[:2]
                done[i] = GenResult(resize_image(to_uint8(image), h, w), seed, attempt + 1, rejected[i])
            pending = still
            if not pending:
                return done  # type: ignore[return-value]
        job = jobs[pending[0]]
        raise SegaugError(
            f"generation failed {self.cfg['max_attempts']} times for prompt {job.prompt!r} (job seed {job.seed}; "
            f"seeds tried {tried[pending[0]]}; rejected: {', '.join(rejected[pending[0]])}); "
            f"with dtype float16 set vae: madebyollin/sdxl-vae-fp16-fix or dtype: float32"
        )

    def _conditions(self, jobs: list[GenJob], size: tuple[int, int]) -> dict:
        """The pipeline's condition arguments for ``jobs``, resized to the generation size."""
        from PIL import Image

        h, w = size
        cfg = self.cfg
        if self.pipeline == "sdxl_inpaint":
            return dict(
                image=[Image.fromarray(resize_image(j.image, h, w)) for j in jobs],
                mask_image=[
                    Image.fromarray(resize_mask(np.asarray(j.mask), h, w).astype(np.uint8) * 255) for j in jobs
                ],
                strength=cfg["strength"],
            )
        priors = [Image.fromarray(resize_prior(j.prior, h, w)).convert("RGB") for j in jobs]
        if self.pipeline == "sdxl_adapter":
            return dict(
                image=priors,
                adapter_conditioning_scale=cfg["conditioning_scale"],
                adapter_conditioning_factor=cfg["adapter_conditioning_factor"],
            )
        return dict(
            image=priors,
            controlnet_conditioning_scale=cfg["conditioning_scale"],
            control_guidance_end=cfg["adapter_conditioning_factor"],
        )

    def _call_pipeline(self, jobs: list[GenJob], seeds: list[int], size: tuple[int, int]) -> np.ndarray:
        """One pipeline call: N x h x w x 3 floats in 0..1 (NaNs kept), one generator per job."""
        import torch

        cfg = self.cfg
        negative = cfg["negative_prompt"] or None  # None: SDXL's zeroed negative embedding
        out = self.pipe(
            prompt=[j.prompt for j in jobs],
            negative_prompt=[negative] * len(jobs) if negative else None,
            height=size[0],
            width=size[1],
            num_inference_steps=cfg["steps"],
            guidance_scale=cfg["guidance_scale"],
            generator=[torch.Generator(self.device).manual_seed(s) for s in seeds],
            output_type="np",
            **self._conditions(jobs, size),
        )
        return np.asarray(out.images, dtype=np.float32)
