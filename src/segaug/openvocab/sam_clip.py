"""SAM 2 + CLIP surfaces: class-agnostic masks labelled by CLIP mask-text alignment.

The heavier open-vocabulary surface source, after the pipeline of the open-vocabulary
segmentation thesis (SAM 2 automatic masks, CLIP ViT-L/14 at 336 px, mask-text alignment with
background suppression and prompt ensembling). :class:`SamClipSurfaces` works in three steps.

**1. Automatic masks** (:class:`Sam2MaskGenerator`, SAM 2 through transformers' ``Sam2Model``
+ ``Sam2Processor``). The image is encoded once; a ``points_per_side`` x ``points_per_side``
grid of cell-centre points (:func:`point_grid`) prompts the mask decoder, ``points_per_batch``
points at a time, each point giving 3 candidate masks (``multimask_output``). A candidate is
kept when

- its predicted IoU is ``> pred_iou_thresh`` (0.88) -- checked first, so that only these
  candidates are upsampled from the decoder's low resolution to HxW (bilinear), and
- its stability score at HxW is ``> stability_thresh`` (0.95) -- :func:`stability_score`:
  ``|logits > t + o| / |logits > t - o|`` with ``t = 0``, offset ``o = 1`` (SAM's definition);

(a threshold <= 0 disables its filter); kept masks are binarised at 0, empty ones dropped, and
duplicates removed by box non-maximum suppression (IoU 0.7 between the masks' bounding
boxes, highest predicted IoU kept). This is the
algorithm of SAM's automatic mask generator without crop layers. transformers 5.24 has a
``mask-generation`` pipeline doing the same, but for SAM 2 it places the grid points as
SAM 1 would (longest side resized, aspect kept) while ``Sam2Processor`` resizes to a square,
so on a non-square image (VOC's 500x375) the grid covers only part of the image; the
generator here normalises the points with ``Sam2Processor`` itself.

**2. Mask-text alignment** (:func:`masked_crop`, :func:`alignment_scores`). Mask ``M_i`` is
cut out of the image -- its bounding box, pixels outside the mask set to CLIP's mean colour
(zero after normalisation), padded to a square with the same colour -- and encoded by CLIP's
image encoder into a unit embedding ``r_i``. Each surface ``t`` gets a unit text embedding
``e_t``: the normalised mean of the unit embeddings of its prompts (``prompt_templates``
filled with the name: prompt ensembling); ``e_bg`` likewise from ``background_prompts``.
Then::

    S[i, t] = cos(r_i, e_t) - alpha * cos(r_i, e_bg)

Relation to that thesis's ``S_i = (1/|M_i|) sum_{p in M_i} sim(f_p, e_t)`` (dense per-pixel
CLIP features ``f_p`` averaged over the mask): here the feature of every pixel of ``M_i`` is
the embedding of the masked region, ``f_p = r_i`` for ``p in M_i``, so the mean over the mask
is exactly ``cos(r_i, e_t)``; background suppression subtracts ``alpha`` (0.3, as in the
seed) times the similarity to the generic background prompts. The subtracted term is the
same for every surface of one mask, so it never changes which surface a mask gets; it
lowers masks that look like generic background, which matters for the ``min_score`` cut and
for which of two overlapping masks a pixel follows.

**3. Pixel assignment** (:func:`assign_masks`). Mask ``i`` proposes surface
``t_i = argmax_t S[i, t]`` with score ``s_i = S[i, t_i]`` (first surface on ties). Masks with
``s_i < min_score`` are dropped. Every pixel takes ``t_i`` of the highest-scoring remaining
mask that covers it (the lower mask index on ties); pixels covered by none get 255.

``min_score`` is in cosine units of the CLIP model: the default 0.15 is a starting point
for ViT-L/14 (matching region/text pairs score roughly 0.2-0.3, unrelated ones 0.1-0.2,
before suppression), to check on a few images of the dataset; random-weight tiny models
need ``min_score=-1`` to label anything.

Models are hub ids (checked against the offline cache by :func:`segaug.generative.hub.resolve`)
or local directories: :func:`segaug.openvocab.tiny.build_tiny_sam` and
``segaug.generative.tiny.build_tiny("clip", dir)`` build tiny random-weight ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from segaug.errors import SegaugError
from segaug.generative import hub
from segaug.openvocab.clipseg import check_templates, expand_prompts
from segaug.openvocab.surfaces import NO_SURFACE, SurfaceMap, check_image, check_surfaces

log = logging.getLogger(__name__)

DEFAULT_SAM = "facebook/sam2.1-hiera-large"
DEFAULT_CLIP = "openai/clip-vit-large-patch14-336"
DEFAULT_TEMPLATES = ("a photo of {}.", "a photo of the {}.", "{}")
BACKGROUND_PROMPTS = ("background", "a photo of the background.", "a photo of nothing in particular.")


# ----------------------------------------------------------------------- 1. automatic masks


def point_grid(n_per_side: int) -> np.ndarray:
    """``(n*n, 2)`` float (x, y) in (0, 1): the centres of an n x n grid of cells, row by row."""
    if n_per_side < 1:
        raise SegaugError(f"points_per_side must be >= 1, got {n_per_side}")
    c = (np.arange(n_per_side) + 0.5) / n_per_side
    ys, xs = np.meshgrid(c, c, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def stability_score(logits: torch.Tensor, mask_threshold: float = 0.0, offset: float = 1.0) -> torch.Tensor:
    """SAM's stability score per mask of ``logits`` (..., H, W).

    ``|logits > t + o| / |logits > t - o|``: the IoU of the mask binarised at a higher and at a
    lower cut-off (the first lies inside the second). 0 where the lower cut-off keeps nothing.
    """
    inner = (logits > mask_threshold + offset).flatten(-2).sum(-1, dtype=torch.int32).float()
    outer = (logits > mask_threshold - offset).flatten(-2).sum(-1, dtype=torch.int32).float()
    return torch.where(outer > 0, inner / outer.clamp(min=1), torch.zeros_like(outer))


def passes(values: torch.Tensor, thresh: float) -> torch.Tensor:
    """SAM's quality filter on predicted IoUs or stability scores: ``values > thresh``;
    a threshold <= 0 turns the filter off (as in SAM's automatic mask generator)."""
    return values > thresh if thresh > 0 else torch.ones_like(values, dtype=torch.bool)


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """``(M, 4)`` float32 half-open xyxy boxes of non-empty bool masks (M, H, W).

    ``x1 = last column + 1`` (likewise ``y1``), so a box's area is the pixels it spans.
    """
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    y0, y1 = rows.argmax(1), masks.shape[1] - rows[:, ::-1].argmax(1)
    x0, x1 = cols.argmax(1), masks.shape[2] - cols[:, ::-1].argmax(1)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)


def nms_masks(masks: np.ndarray, scores: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Indices of the masks kept by box non-maximum suppression, best score first."""
    from torchvision.ops import nms

    if len(masks) == 0:
        return np.zeros(0, np.int64)
    keep = nms(torch.from_numpy(mask_boxes(masks)), torch.as_tensor(scores, dtype=torch.float32), iou_thresh)
    return keep.numpy()


class Sam2MaskGenerator:
    """SAM 2 automatic mask generation (point grid, IoU/stability filter, box NMS).

    Args:
        model: hub id or local directory of a ``Sam2Model`` + ``Sam2Processor``.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        points_per_side: the prompt grid is ``points_per_side`` squared points.
        pred_iou_thresh: keep masks whose predicted IoU is above this.
        stability_thresh: keep masks whose stability score is above this.
        nms_thresh: box IoU above which the lower-scoring of two masks is dropped.
        points_per_batch: points per mask-decoder call (memory vs speed).
    """

    def __init__(
        self,
        model: str = DEFAULT_SAM,
        device: str = "auto",
        points_per_side: int = 32,
        pred_iou_thresh: float = 0.88,
        stability_thresh: float = 0.95,
        nms_thresh: float = 0.7,
        points_per_batch: int = 64,
    ):
        from transformers import AutoConfig, Sam2Model, Sam2Processor

        from segaug.device import resolve_device

        self.points = point_grid(int(points_per_side))
        self.pred_iou_thresh, self.stability_thresh = float(pred_iou_thresh), float(stability_thresh)
        self.nms_thresh, self.points_per_batch = float(nms_thresh), max(1, int(points_per_batch))
        ref = hub.resolve(model, "SAM 2 model")
        model_type = AutoConfig.from_pretrained(ref).model_type
        if model_type != "sam2":
            raise SegaugError(f"SAM 2 model {model!r}: expected a SAM 2 checkpoint (model_type sam2), got {model_type}")
        self.device = resolve_device(device)
        self.processor = Sam2Processor.from_pretrained(ref)
        self.model = Sam2Model.from_pretrained(ref).to(self.device).eval()
        log.info("SAM 2 %s on %s (%d points)", model, self.device, len(self.points))

    @torch.no_grad()
    def generate(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Masks of ``image``: ``(M, H, W)`` bool and their predicted IoU ``(M,)``, best first."""
        image = check_image(image)
        h, w = image.shape[:2]
        pixels = self.processor(images=image, input_data_format="channels_last", return_tensors="pt")["pixel_values"]
        pixels = pixels.to(self.device)
        embeddings = self.model.get_image_embeddings(pixels)
        points = self.points * np.array([w, h], dtype=np.float64)
        masks, scores = [np.zeros((0, h, w), bool)], [np.zeros(0, np.float32)]
        for start in range(0, len(points), self.points_per_batch):
            m, s = self._decode(embeddings, points[start : start + self.points_per_batch], (h, w))
            masks.append(m)
            scores.append(s)
        masks, scores = np.concatenate(masks), np.concatenate(scores)
        keep = nms_masks(masks, scores, self.nms_thresh)
        log.debug("SAM 2: %d masks kept of %d candidates", len(keep), 3 * len(points))
        return masks[keep], scores[keep]

    def prompts(self, points: np.ndarray, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Model inputs for single-point prompts at pixel ``(x, y)`` of an image of ``size`` (H, W).

        ``Sam2Processor`` maps pixel coordinates onto its square model input (x scaled by
        ``input / W``, y by ``input / H``), the resize it applies to the image.
        """
        enc = self.processor(
            original_sizes=[list(size)],
            input_points=[[[[float(x), float(y)]] for x, y in points]],
            input_labels=[[[1] for _ in points]],
            return_tensors="pt",
        )
        return {k: enc[k].to(self.device) for k in ("input_points", "input_labels")}

    def _decode(self, embeddings, points: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Masks of one batch of single-point prompts (pixel x, y) that pass the quality filters."""
        out = self.model(image_embeddings=embeddings, **self.prompts(points, size), multimask_output=True)
        low, iou = out.pred_masks[0].float().flatten(0, 1), out.iou_scores[0].float().flatten()
        keep = passes(iou, self.pred_iou_thresh)  # before upsampling: the IoU does not depend on it
        if not keep.any():
            return np.zeros((0, *size), bool), np.zeros(0, np.float32)
        logits = self.processor.post_process_masks([low[keep, None]], [list(size)], binarize=False)[0][:, 0]
        iou = iou[keep]
        keep = passes(stability_score(logits), self.stability_thresh)
        masks, iou = (logits[keep] > 0).cpu().numpy(), iou[keep].cpu().numpy()
        nonempty = masks.any(axis=(1, 2))
        return masks[nonempty], iou[nonempty]


# ----------------------------------------------------------------- 2. mask-text alignment


def masked_crop(image: np.ndarray, mask: np.ndarray, fill: Sequence[int]) -> np.ndarray:
    """The mask's region as a square image for CLIP.

    The bounding box of ``mask`` is cut from ``image``, pixels outside the mask are set to
    ``fill`` (RGB), and the crop is padded with ``fill`` to a square, centred, so that CLIP's
    resize and centre crop keep all of it.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        raise ValueError("masked_crop: empty mask")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    fill = np.asarray(fill, dtype=np.uint8)
    crop = np.where(mask[y0:y1, x0:x1, None], image[y0:y1, x0:x1], fill)
    h, w = crop.shape[:2]
    side = max(h, w)
    out = np.empty((side, side, 3), np.uint8)
    out[:] = fill
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = crop
    return out


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-12)


def ensemble(embeddings: torch.Tensor, groups: int) -> torch.Tensor:
    """Prompt ensembling: ``(groups * k, D)`` unit embeddings, grouped consecutively -> ``(groups, D)``
    unit vectors, each the normalised mean of its group."""
    return unit(unit(embeddings).reshape(groups, -1, embeddings.shape[-1]).mean(1))


def alignment_scores(
    regions: torch.Tensor, texts: torch.Tensor, background: torch.Tensor, alpha: float
) -> torch.Tensor:
    """``S[i, t] = cos(r_i, e_t) - alpha * cos(r_i, e_bg)`` for region embeddings ``(M, D)``,
    surface embeddings ``(S, D)`` and one background embedding ``(D,)``; returns ``(M, S)``."""
    r, t, b = unit(regions.float()), unit(texts.float()), unit(background.float().reshape(1, -1))
    return r @ t.T - alpha * (r @ b.T)


# ---------------------------------------------------------------------- 3. pixel assignment


def assign_masks(masks: np.ndarray, scores: np.ndarray, min_score: float) -> np.ndarray:
    """HxW uint8 surface index from masks ``(M, H, W)`` bool and their scores ``(M, S)``.

    Mask ``i`` proposes ``argmax_t scores[i]`` (first on ties) with score ``max_t scores[i]``;
    masks scoring below ``min_score`` (or NaN) are dropped; each pixel takes the proposal of
    the highest-scoring remaining mask covering it (lower index on ties); others get 255.
    """
    masks, scores = np.asarray(masks, bool), np.asarray(scores, np.float64)
    if masks.ndim != 3 or scores.ndim != 2 or scores.shape[0] != masks.shape[0]:
        raise ValueError(f"need masks (M, H, W) and scores (M, S), got {masks.shape} and {scores.shape}")
    out = np.full(masks.shape[1:], NO_SURFACE, np.uint8)
    if masks.shape[0] == 0 or scores.shape[1] == 0:
        return out
    surface, best = scores.argmax(axis=1), scores.max(axis=1)
    free = np.ones(masks.shape[1:], bool)
    for i in np.argsort(-best, kind="stable"):
        if not best[i] >= min_score:  # also drops NaN
            break
        claim = masks[i] & free
        out[claim] = surface[i]
        free &= ~claim
    return out


# -------------------------------------------------------------------------------- the source


class SamClipSurfaces:
    """Open-vocabulary surface maps from SAM 2 masks and CLIP (see the module docstring).

    Args:
        sam_model: hub id or local directory of a SAM 2 ``Sam2Model`` + ``Sam2Processor``.
        clip_model: hub id or local directory of a ``CLIPModel`` + ``CLIPProcessor``.
        device: ``"auto"`` (CUDA when visible), ``"cuda"`` or ``"cpu"``.
        points_per_side, pred_iou_thresh, stability_thresh, nms_thresh, points_per_batch:
            SAM 2 automatic mask generation (:class:`Sam2MaskGenerator`).
        alpha: weight of the background suppression term.
        min_score: a mask labels its pixels only if its best ``S[i, t]`` is at least this.
        prompt_templates: templates with one ``{}``; a surface's text embedding is their ensemble.
        background_prompts: the generic prompts whose ensemble is ``e_bg``.
        clip_batch_size: masked regions per CLIP forward.
    """

    name = "sam_clip"

    def __init__(
        self,
        sam_model: str = DEFAULT_SAM,
        clip_model: str = DEFAULT_CLIP,
        device: str = "auto",
        points_per_side: int = 32,
        pred_iou_thresh: float = 0.88,
        stability_thresh: float = 0.95,
        alpha: float = 0.3,
        min_score: float = 0.15,
        prompt_templates: Sequence[str] = DEFAULT_TEMPLATES,
        background_prompts: Sequence[str] = BACKGROUND_PROMPTS,
        nms_thresh: float = 0.7,
        points_per_batch: int = 64,
        clip_batch_size: int = 32,
    ):
        from segaug.generative.clip import ClipScorer

        self.templates = check_templates(prompt_templates)
        self.background_prompts = tuple(background_prompts)
        if not self.background_prompts or not all(isinstance(p, str) and p for p in self.background_prompts):
            raise SegaugError(f"background_prompts: give at least one non-empty prompt, got {list(background_prompts)}")
        self.alpha, self.min_score = float(alpha), float(min_score)
        self.generator = Sam2MaskGenerator(
            sam_model, device, points_per_side, pred_iou_thresh, stability_thresh, nms_thresh, points_per_batch
        )
        self.clip = ClipScorer(clip_model, device=self.generator.device, batch_size=clip_batch_size)
        mean = getattr(self.clip.processor.image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
        self.fill = tuple(int(round(255 * m)) for m in mean)
        self._background = None

    @torch.no_grad()
    def text_embeddings(self, surfaces: Sequence[str]) -> torch.Tensor:
        """``(S, D)`` unit embeddings of the surfaces, each ensembled over the templates."""
        return ensemble(self.clip.text_embeddings(expand_prompts(surfaces, self.templates)), len(surfaces))

    @torch.no_grad()
    def background_embedding(self) -> torch.Tensor:
        """``(D,)`` unit embedding ``e_bg``, the ensemble of ``background_prompts`` (computed once)."""
        if self._background is None:
            self._background = ensemble(self.clip.text_embeddings(list(self.background_prompts)), 1)[0]
        return self._background

    @torch.no_grad()
    def region_embeddings(self, image: np.ndarray, masks: np.ndarray) -> torch.Tensor:
        """``(M, D)`` unit CLIP embeddings of the masked regions (:func:`masked_crop`)."""
        crops = [masked_crop(image, m, self.fill) for m in masks]
        size = self.clip.batch_size
        return torch.cat([self._image_embeddings(crops[i : i + size]) for i in range(0, len(crops), size)])

    def _image_embeddings(self, crops: list[np.ndarray]) -> torch.Tensor:
        """Unit projected CLIP embeddings of HxWx3 crops. Channels-last is stated explicitly:
        the processor would guess channels-first for a crop such as 3x3x3."""
        pixels = self.clip.processor.image_processor(
            images=crops, input_data_format="channels_last", return_tensors="pt"
        )["pixel_values"]
        features = self.clip.model.get_image_features(pixel_values=pixels.to(self.clip.device))
        return unit(features if isinstance(features, torch.Tensor) else features.pooler_output)

    def scores(self, image: np.ndarray, masks: np.ndarray, surfaces: Sequence[str]) -> np.ndarray:
        """``(M, S)`` alignment scores ``S[i, t]`` of the masks against the surfaces."""
        if len(masks) == 0:
            return np.zeros((0, len(surfaces)), np.float32)
        regions = self.region_embeddings(image, masks)
        s = alignment_scores(regions, self.text_embeddings(surfaces), self.background_embedding(), self.alpha)
        return s.cpu().numpy()

    def predict(self, image: np.ndarray, surfaces: list[str]) -> SurfaceMap:
        """Surface map of ``image`` over ``surfaces`` (255 where no mask passes ``min_score``)."""
        image, surfaces = check_image(image), check_surfaces(surfaces)
        if not surfaces:
            return SurfaceMap.empty(surfaces, image.shape[:2])
        masks, _ = self.generator.generate(image)
        if len(masks) == 0:
            return SurfaceMap.empty(surfaces, image.shape[:2])
        scores = self.scores(image, masks, surfaces)
        index = assign_masks(masks, scores, self.min_score)
        log.debug("sam_clip: %d masks, %d labelled", len(masks), int((scores.max(1) >= self.min_score).sum()))
        return SurfaceMap(surfaces, index)
