"""How a paste job writes its images, and how it spreads its images over worker processes.

Output options (:class:`OutputOptions`, config keys ``image_format`` and ``compress_level`` of a
paste method):

* ``image_format``: ``source`` (default: a pasted copy keeps its source image's format, PNG or
  JPEG), ``png`` or ``jpg`` (JPEG quality 95);
* ``compress_level``: zlib level 0-9 of every PNG written (images and labels). Default 1:
  PNG encoding was 59 % of a SIGtor job at PIL's level 6, and level 1 encodes several times
  faster for files a little larger. Pixels are the same at any level (PNG is lossless);
  labels are always PNG.

Files are encoded with OpenCV and written straight into the job's one staging directory
(:func:`segaug.io.atomic_path` of the output directory, renamed into place when the whole job
succeeded), not through a temporary directory per file.

Workers (:func:`map_images`): image ``i`` of a job is a pure function of (seed, i, inputs) --
its generators are ``default_rng([seed, i, copy])`` -- so images can be made in any process and
in any order; results are collected in image order, so the files, the manifest and the summary
are byte-identical for any number of workers. The pool uses the ``spawn`` start method (a
forked child can hang in OpenCV's thread pool once the parent used it) and one OpenCV thread
per worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from segaug.errors import SegaugError
from segaug.paste.options import IMAGE_FORMATS

log = logging.getLogger("segaug.paste")

DEFAULT_COMPRESS_LEVEL = 1
JPEG_QUALITY = 95


@dataclass(frozen=True)
class OutputOptions:
    image_format: str = "source"
    compress_level: int = DEFAULT_COMPRESS_LEVEL

    def __post_init__(self):
        if self.image_format not in IMAGE_FORMATS:
            raise SegaugError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, got {self.image_format!r}")
        if isinstance(self.compress_level, bool) or self.compress_level not in range(10):
            raise SegaugError(f"compress_level must be an integer 0-9, got {self.compress_level!r}")

    def image_suffix(self, source: str | Path) -> str:
        """``.png`` or ``.jpg`` for a pasted copy of the image file ``source``."""
        fmt = self.image_format
        if fmt == "source":
            fmt = "jpg" if Path(source).suffix.lower() in (".jpg", ".jpeg") else "png"
        return f".{fmt}"

    def to_dict(self) -> dict:
        return {"image_format": self.image_format, "compress_level": self.compress_level}


def encode(image: np.ndarray, suffix: str, compress_level: int = DEFAULT_COMPRESS_LEVEL) -> bytes:
    """PNG (lossless, zlib ``compress_level``) or JPEG (quality 95) bytes of an RGB HxWx3 or
    grey HxW uint8 image."""
    arr = np.ascontiguousarray(image, dtype=np.uint8)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    if suffix == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)]
    elif suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    else:
        raise ValueError(f"unknown image suffix {suffix!r}")
    ok, buf = cv2.imencode(suffix, arr, params)
    if not ok:
        raise SegaugError(f"OpenCV could not encode a {arr.shape} image as {suffix}")
    return buf.tobytes()


def write_into_staging(path: Path, image: np.ndarray, compress_level: int) -> None:
    """Write an image into the job's staging directory (no temporary of its own: the staging
    directory is renamed into place as a whole)."""
    path.write_bytes(encode(image, path.suffix.lower(), compress_level))


# ------------------------------------------------------------------ worker pool
_JOB = None
_WORK: Callable | None = None


def _init_worker(work, job):
    global _JOB, _WORK
    cv2.setNumThreads(1)  # a fresh (spawned) process: one OpenCV thread per worker
    _WORK, _JOB = work, job


def _run(i):
    return _WORK(_JOB, i)


def map_images(work: Callable, job, n: int, workers: int = 1) -> Iterator:
    """``work(job, i)`` for ``i = 0 .. n-1``, yielded in that order; in ``workers`` spawned
    processes when ``workers > 1`` (``work`` a module-level function and ``job`` picklable,
    sent once to each worker; a job that does not pickle runs in this process)."""
    workers = max(1, min(int(workers or 1), n))
    if workers > 1:
        import pickle

        try:
            pickle.dumps((work, job))
        except Exception as e:  # e.g. a placer holding a local function: one process
            log.info("paste: this job cannot be sent to worker processes (%s); one process", e)
            workers = 1
    if workers == 1:
        for i in range(n):
            yield work(job, i)
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(work, job)) as pool:
        yield from pool.imap(_run, range(n), chunksize=max(1, min(8, n // (4 * workers))))
