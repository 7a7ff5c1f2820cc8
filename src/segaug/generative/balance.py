"""The paper's class-balancing algorithm (Algorithm 1) and the generation plan it yields.

Algorithm 1 (Che et al. 2025), for an original set ``D_origin`` and a target ``n_balance``:

1. Initialisation: ``M[C]`` = the images that contain class ``C``.
2. Sorting: each ``M[C]`` sorted by the number of classes in the image, fewest first.
3. Balancing: for each class ``C`` while ``len(M[C]) < n_balance``: walk ``M[C]`` in that
   order, generate ``I_gen`` from each image ``I``, add ``I_gen`` to ``M[C]`` and to ``D_gen``,
   stop as soon as ``len(M[C])`` reaches ``n_balance``.

``D_final = D_gen ∪ D_origin``.

Choices the pseudo-code leaves open, made explicit here:

- Classes are balanced in class-index order; background and ignore are not balanced
  (``exclude``; every VOC image has background).
- The walk of step 3 goes over the *real* images of ``M[C]`` (a snapshot taken before
  balancing) and starts over from the first when it runs out, so a synthetic image is always
  generated from a real one; each use of a real image gets the next copy index, which together
  with the seed gives its generation seed. Ties in the sort keep the split-list order.
- ``M[C]`` counts only the images added *for* ``C``. A generated image also shows the other
  classes of its source, so class counts in ``D_final`` (what :mod:`segaug.metrics` entropy and
  CIR measure) rise for co-occurring classes too. This reading reproduces the paper's Table 4
  sizes: |D_gen| grows by about 14 x 15 images per 14 steps of ``n_balance`` (216 → 425 → 634
  → 845 for 27 → 41 → 55 → 69), i.e. linearly in ``n_balance`` as ``sum_C max(0, n - |M[C]|)``.

``n_balance`` is chosen so that |D_gen| ≈ |D_origin| by default (:func:`auto_n_balance`), or set
explicitly. Without balancing (Table 3's ablation) the plan is ``uniform_plan``: ``copies``
synthetic images per real image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from segaug.errors import SegaugError


def class_index(image_classes: Mapping[str, Sequence[int]], exclude: Sequence[int] = ()) -> dict[int, list[str]]:
    """Stages 1 and 2: ``M[C]``, images per class sorted by their number of classes.

    ``image_classes`` maps image id → classes present (in split-list order); classes in
    ``exclude`` are left out of ``M``. The sort is stable, so ties keep the list order.
    """
    excl = set(int(c) for c in exclude)
    order = {i: k for k, i in enumerate(image_classes)}
    m: dict[int, list[str]] = {}
    for img, classes in image_classes.items():
        for c in sorted(set(int(c) for c in classes) - excl):
            m.setdefault(c, []).append(img)
    n_classes = {img: len(set(int(c) for c in cl) - excl) for img, cl in image_classes.items()}
    return {c: sorted(imgs, key=lambda i: (n_classes[i], order[i])) for c, imgs in sorted(m.items())}


def balance_plan(image_classes: Mapping[str, Sequence[int]], n_balance: int, exclude: Sequence[int] = ()) -> list[dict]:
    """Stage 3: the list of images to generate, in generation order.

    Each entry: ``{"class": C, "source": image id, "copy": k}``; ``copy`` counts the uses of
    ``source`` so far (over all classes), so ``f"{source}_g{copy}"`` is a unique output id.
    """
    if int(n_balance) < 0:
        raise SegaugError(f"n_balance must be >= 0, got {n_balance}")
    m = class_index(image_classes, exclude)
    uses: dict[str, int] = {}
    plan = []
    for c, real in m.items():
        count, k = len(real), 0
        while count < n_balance:
            src = real[k % len(real)]
            plan.append({"class": c, "source": src, "copy": uses.get(src, 0)})
            uses[src] = uses.get(src, 0) + 1
            count += 1
            k += 1
    return plan


def generated_count(image_classes: Mapping[str, Sequence[int]], n_balance: int, exclude: Sequence[int] = ()) -> int:
    """|D_gen| for ``n_balance``: ``sum_C max(0, n_balance - |M[C]|)``."""
    return sum(max(0, int(n_balance) - len(v)) for v in class_index(image_classes, exclude).values())


def auto_n_balance(
    image_classes: Mapping[str, Sequence[int]], target: int | None = None, exclude: Sequence[int] = ()
) -> int:
    """The ``n_balance`` whose |D_gen| is closest to ``target`` (default |D_origin|); ties → smaller."""
    target = len(image_classes) if target is None else int(target)
    m = class_index(image_classes, exclude)
    if not m:
        raise SegaugError("no balanced class occurs in the split: nothing to balance")
    best, best_err = 0, target
    n = 0
    while True:
        n += 1
        size = sum(max(0, n - len(v)) for v in m.values())
        err = abs(size - target)
        if err < best_err:
            best, best_err = n, err
        if size >= target:
            return best


def uniform_plan(ids: Sequence[str], copies: int = 1) -> list[dict]:
    """No balancing: ``copies`` synthetic images of every real image (class = -1)."""
    return [{"class": -1, "source": i, "copy": k} for k in range(int(copies)) for i in ids]


def final_class_counts(
    image_classes: Mapping[str, Sequence[int]], plan: Sequence[Mapping], num_classes: int
) -> tuple[list[int], list[int]]:
    """Images containing each class in D_origin and in D_final = D_gen ∪ D_origin."""
    origin = [0] * num_classes
    for classes in image_classes.values():
        for c in set(int(c) for c in classes):
            origin[c] += 1
    final = list(origin)
    for p in plan:
        for c in set(int(c) for c in image_classes[p["source"]]):
            final[c] += 1
    return origin, final


def image_classes(dataset_root, ids: Sequence[str]) -> dict[str, list[int]]:
    """Classes present in each image's label (ignore left out), in ``ids`` order."""
    import numpy as np

    from segaug.data.canonical import IGNORE_INDEX, read_label, samples

    out = {}
    for s in samples(dataset_root, ids):
        lab = read_label(s.label)
        out[s.id] = sorted(int(c) for c in np.unique(lab) if c != IGNORE_INDEX)
    return out


def make_plan(
    image_classes: Mapping[str, Sequence[int]],
    plan: str,
    class_names: Sequence[str],
    exclude: Sequence[str] = ("background",),
) -> dict:
    """The plan artifact for a plan name: ``balance-auto``, ``balance-<n>`` or ``uniform-<copies>``.

    Holds the entries (see :func:`balance_plan`) and the data-balance statistics of D_origin
    and D_final (class entropy and CIR over images-per-class, ``exclude`` left out).
    """
    from segaug.metrics import class_entropy, class_imbalance_ratio

    kind, _, arg = plan.partition("-")
    excl = [class_names.index(n) for n in exclude if n in class_names]
    n_balance = None
    if kind == "balance":
        n_balance = auto_n_balance(image_classes, exclude=excl) if arg == "auto" else int(arg)
        entries = balance_plan(image_classes, n_balance, excl)
    elif kind == "uniform":
        entries = uniform_plan(list(image_classes), int(arg))
    else:
        raise SegaugError(f"unknown plan {plan!r}: use balance-auto, balance-<n> or uniform-<copies>")
    origin, final = final_class_counts(image_classes, entries, len(class_names))
    keep = [c for c in range(len(class_names)) if c not in excl]
    o = [origin[c] for c in keep]
    f = [final[c] for c in keep]
    return {
        "plan": plan,
        "n_balance": n_balance,
        "exclude": [class_names[c] for c in excl],
        "num_origin": len(image_classes),
        "num_generated": len(entries),
        "class_names": list(class_names),
        "images_per_class_origin": origin,
        "images_per_class_final": final,
        "entropy_origin": round(class_entropy(o), 4),
        "cir_origin": round(class_imbalance_ratio(o), 4),
        "entropy_final": round(class_entropy(f), 4),
        "cir_final": round(class_imbalance_ratio(f), 4),
        "image_classes": {k: list(map(int, v)) for k, v in image_classes.items()},
        "entries": entries,
    }
