"""Datasets and the deterministic training stream.

Training reads a stream of *global* sample positions ``g = 0, 1, 2, ...``: step ``k`` of the
run (0-based) takes positions ``k * batch .. (k + 1) * batch - 1``. :class:`StreamSampler`
yields the positions of one Lightning epoch (``steps_per_epoch`` steps) starting at the
trainer's global step (or at the epoch Lightning announces through ``set_epoch``).
:class:`SegDataset` maps a position to

* the sample: pass ``p = g // N`` over the ``N`` samples uses the permutation
  ``default_rng([seed, 0, p]).permutation(N)``, and ``g`` takes its entry ``g % N``;
* the augmentation: ``default_rng([seed, 1, g])``.

So batch ``k`` is a pure function of (seed, k, sample list, transform) whatever the number of
workers and however often the run was interrupted and resumed. Several label sources (the
canonical dataset plus pasted or generated sets) are just one concatenated sample list.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from segaug.data.canonical import Sample, load_pair, read_label
from segaug.errors import SegaugError


def step_seed(seed: int, step: int) -> int:
    """The torch seed of training step ``step`` of run ``seed`` (dropout; both backends)."""
    return int(np.random.default_rng([int(seed), 2, int(step)]).integers(2**62))


class SegDataset(Dataset):
    """Map-style dataset of (image HxWx3 uint8, label HxW uint8, index, (h, w)) items.

    The image and label come out as the transform gives them: uint8, padded, with the (h, w)
    of their content; :func:`segaug.train.transforms.to_model_input` makes the model's float
    input on the device (and the label becomes int64 there).

    With a random transform (``transform.random``, the training transform) an index is a
    global stream position (any non-negative int); otherwise it is a sample index and the
    transform is applied without randomness (validation).

    Label values are not checked on every read: the dataset conversion and every writer of a
    pasted or generated set check them once (``check_labels=True`` checks every label here,
    once, when the dataset is made).
    """

    def __init__(
        self, samples: Sequence[Sample], num_classes: int, transform, seed: int = 0, check_labels: bool = False
    ):
        if not samples:
            raise SegaugError("dataset: no samples (empty split list?)")
        self.samples = list(samples)
        self.num_classes = num_classes
        self.transform = transform
        self.seed = int(seed)
        if check_labels:
            for s in self.samples:
                read_label(s.label, num_classes)
        self.stream = bool(getattr(transform, "random", False))
        self._perms: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.samples)

    def permutation(self, p: int) -> np.ndarray:
        """Sample order of pass ``p`` over the data (cached, a few passes at a time)."""
        perm = self._perms.get(p)
        if perm is None:
            perm = np.random.default_rng([self.seed, 0, p]).permutation(len(self.samples))
            self._perms[p] = perm
            while len(self._perms) > 4:
                self._perms.popitem(last=False)
        return perm

    def sample_index(self, g: int) -> int:
        n = len(self.samples)
        return int(self.permutation(g // n)[g % n])

    def __getitem__(self, g: int):
        g = int(g)
        if self.stream:
            sample = self.samples[self.sample_index(g)]
            rng = np.random.default_rng([self.seed, 1, g])
        else:
            sample = self.samples[g]
            rng = None
        image, label = load_pair(sample)
        x, y, hw = self.transform(image, label, rng)
        if not y.flags.writeable:  # a view of PIL's read-only buffer (uncropped/unpadded)
            y = y.copy()
        return torch.from_numpy(x), torch.from_numpy(y), g, torch.tensor(hw)


class StreamSampler(Sampler[int]):
    """Yields the global positions of one epoch of ``steps_per_epoch`` steps.

    The epoch starts at optimizer step ``start``: positions ``start * batch_size + i`` for
    ``i < steps_per_epoch * batch_size``. ``start`` is ``step_source()`` when given (the
    trainer's global step, read when the epoch's iterator is created), else
    ``epoch * steps_per_epoch`` with the epoch set through :meth:`set_epoch`, which Lightning
    calls before each epoch. :func:`segaug.train.loop.train` uses the global step: after a
    resume from an epoch-end checkpoint, lightning 2.6 calls ``set_epoch`` with
    ``epoch_progress.current.processed``, which is then one ahead of ``current_epoch`` (it
    would replay the wrong samples); the restored optimizer step is exact.
    """

    def __init__(self, steps_per_epoch: int, batch_size: int, step_source=None):
        self.steps_per_epoch = int(steps_per_epoch)
        self.batch_size = int(batch_size)
        self.n = self.steps_per_epoch * self.batch_size
        self.step_source = step_source
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        step = self.step_source() if self.step_source is not None else self.epoch * self.steps_per_epoch
        start = int(step) * self.batch_size
        return iter(range(start, start + self.n))

    def __len__(self) -> int:
        return self.n
