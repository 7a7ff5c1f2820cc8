"""Visual priors and Visual Prior Blending (the paper's Section 3.2.2, Eq. 4).

A *visual prior* is the edge map a controllable diffusion model is conditioned on: uint8
HxW, 255 = edge, 0 = none (white lines on black, what T2I-Adapter and ControlNet expect).

Detectors (:class:`PriorDetector`):

- ``lineart``: the Line-Art model of Chan et al. 2022 through controlnet_aux
  (``LineartDetector``, weights ``sk_model.pth`` / ``sk_model2.pth`` of ``lllyasviel/Annotators``);
  the paper's default.
- ``canny``: OpenCV's Canny edges (thresholds in config).
- ``sketch``: PiDiNet (Su et al. 2021) through controlnet_aux (``PidiNetDetector``,
  ``table5_pidinet.pth``), the sketch prior of the T2I-Adapter sketch model.

Label prior ``V_S``: the labels give exact object outlines where the image prior is weak (small,
blurred or low-contrast objects, Figure 4). Two ways to get it, chosen by ``label_prior`` in
config:

- ``palette`` (default): run **the same detector** on the colour-coded label map (the dataset's
  palette; ignore pixels painted as background first, so VOC's void bands are not drawn as
  objects). The label prior then has the same line style as the image prior, which is what the
  adapter was trained on.
- ``index_edges``: the boundaries of the index map itself (a pixel is an edge where a 4-neighbour
  has another class), dilated to ``edge_width`` pixels. Detector-free and exact, but a
  different style from the learned detectors (hard 1-2 px lines).

Blending (Eq. 4): ``V = clip(w1 * V_I + w2 * V_S, 0, 255)`` on the 0..255 scale, with
``w1 = 0.7`` and ``w2 = 0.9`` by default (Table 7 sweeps them). The paper writes the weighted
sum; the clip keeps it a valid 8-bit image where both priors have an edge.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from segaug.data.canonical import IGNORE_INDEX, ClassTable
from segaug.errors import SegaugError
from segaug.generative import hub

log = logging.getLogger(__name__)

PRIOR_KINDS = ("lineart", "canny", "sketch")
LABEL_PRIOR_MODES = ("palette", "index_edges")
DEFAULT_ANNOTATORS = "lllyasviel/Annotators"


class PriorDetector:
    """One edge detector, loaded once, applied to many images.

    ``model`` is the hub id or local directory of the annotator weights (line art and sketch);
    ``detect_resolution`` is the short side the network sees (controlnet_aux rounds it to a
    multiple of 64); the result is always resized back to the input's HxW.
    """

    def __init__(
        self,
        kind: str,
        model: str = DEFAULT_ANNOTATORS,
        device: str = "auto",
        detect_resolution: int = 512,
        coarse: bool = False,
        canny_low: int = 100,
        canny_high: int = 200,
    ):
        if kind not in PRIOR_KINDS:
            raise SegaugError(f"unknown visual prior {kind!r}; known: {', '.join(PRIOR_KINDS)}")
        self.kind = kind
        self.detect_resolution = int(detect_resolution)
        self.coarse = bool(coarse)
        self.canny = (int(canny_low), int(canny_high))
        self.net = None
        if kind in ("lineart", "sketch"):
            from segaug.device import resolve_device

            filename = "sk_model.pth" if kind == "lineart" else "table5_pidinet.pth"
            ref = hub.resolve(model, f"{kind} annotator", filename=filename)
            if kind == "lineart":
                from controlnet_aux import LineartDetector as cls
            else:
                from controlnet_aux import PidiNetDetector as cls
            self.net = cls.from_pretrained(ref).to(resolve_device(device))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Edge map (uint8 HxW, 255 = edge) of an RGB uint8 image."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise SegaugError(f"prior detector expects uint8 HxWx3 RGB, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        if self.kind == "canny":
            return cv2.Canny(rgb, *self.canny)
        res = self.detect_resolution
        if self.kind == "lineart":
            out = self.net(rgb, coarse=self.coarse, detect_resolution=res, image_resolution=res, output_type="np")
        else:
            out = self.net(rgb, detect_resolution=res, image_resolution=res, safe=True, output_type="np")
        out = np.asarray(out)
        if out.ndim == 3:
            out = out[..., 0]
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA).astype(np.uint8)


def label_colour_map(label: np.ndarray, class_table: ClassTable, fill_index: int = 0) -> np.ndarray:
    """The label as an RGB palette image, ignore pixels painted as class ``fill_index``."""
    lab = np.where(label == IGNORE_INDEX, fill_index, label).astype(np.uint8)
    return class_table.colorize(lab)


def index_edges(label: np.ndarray, edge_width: int = 2) -> np.ndarray:
    """Boundaries of an index map (ignore counted as class 0), dilated to ``edge_width`` px."""
    lab = np.where(label == IGNORE_INDEX, 0, label)
    edge = np.zeros(lab.shape, dtype=bool)
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    out = edge.astype(np.uint8) * 255
    if edge_width > 1:
        out = cv2.dilate(out, np.ones((edge_width, edge_width), np.uint8))
    return out


def label_prior(
    detector: PriorDetector,
    label: np.ndarray,
    class_table: ClassTable,
    mode: str = "palette",
    edge_width: int = 2,
) -> np.ndarray:
    """The label prior ``V_S`` of one label map (see the module docstring for the modes)."""
    if mode == "palette":
        return detector(label_colour_map(label, class_table))
    if mode == "index_edges":
        return index_edges(label, edge_width)
    raise SegaugError(f"unknown label prior mode {mode!r}; known: {', '.join(LABEL_PRIOR_MODES)}")


def blend(v_image: np.ndarray, v_label: np.ndarray, w1: float = 0.7, w2: float = 0.9) -> np.ndarray:
    """Visual Prior Blending, Eq. 4: ``clip(w1 * V_I + w2 * V_S, 0, 255)`` as uint8."""
    if v_image.shape != v_label.shape:
        raise SegaugError(f"image prior {v_image.shape} and label prior {v_label.shape} differ in size")
    v = w1 * v_image.astype(np.float32) + w2 * v_label.astype(np.float32)
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)
