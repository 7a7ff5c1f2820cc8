"""A stand-in for mmcv's compiled ops (``mmcv._ext``), for mmcv-lite installs.

mmcv-lite is mmcv without its C++/CUDA extension ``mmcv._ext``. MMSegmentation 1.2 imports
``mmcv.ops`` at module level in a few files, and every ``mmcv.ops`` module loads its functions
from ``mmcv._ext`` when imported (``mmcv.utils.ext_loader.load_ext`` only checks that the names
exist), so ``import mmseg.models`` fails on mmcv-lite although the models the paper trains call
no compiled op on CPU: DeepLabV3+ / PSPNet / FCN heads use none, and Mask2Former's multi-scale
deformable attention calls ``ms_deform_attn_forward`` on CUDA only (its CPU path is pure
PyTorch). :func:`install` registers a module whose every attribute is a function that records
its name in :data:`CALLED` and raises, so an op that *is* needed fails loudly, naming itself
and the fix, instead of computing something else.

Used only when the compiled ops are absent (:func:`install` is a no-op with a full mmcv).
For GPU clusters install the full mmcv with compiled ops instead (see envs/mmseg.yaml).
"""

from __future__ import annotations

import importlib.machinery
import sys
import types

CALLED: set[str] = set()  # compiled ops something tried to call (tests: must stay empty)


class MissingCompiledOp(RuntimeError):
    pass


def _missing(name: str):
    def op(*args, **kwargs):
        CALLED.add(name)
        raise MissingCompiledOp(
            f"mmcv compiled op {name!r} is not available (mmcv-lite + segaug's stand-in); "
            "install the full mmcv with compiled ops (envs/mmseg.yaml, 'GPU clusters')"
        )

    op.__name__ = name
    return op


def compiled_ops_available() -> bool:
    """Whether a real ``mmcv._ext`` (full mmcv) is importable."""
    mod = sys.modules.get("mmcv._ext")
    if mod is not None:
        return not getattr(mod, "SEGAUG_STANDIN", False)
    try:
        import mmcv._ext  # noqa: F401
    except ImportError:
        return False
    return True


def install() -> bool:
    """Register the stand-in as ``mmcv._ext`` unless the real one exists; True if installed."""
    if compiled_ops_available():
        return False
    if "mmcv._ext" in sys.modules:  # already installed
        return True
    mod = types.ModuleType("mmcv._ext", "segaug stand-in for mmcv's compiled ops (mmcv-lite)")
    mod.SEGAUG_STANDIN = True
    # a spec without a loader: importlib/pkgutil lookups (mmengine's mmcv_full_available)
    # see the module but no extension behind it
    mod.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _missing(name)

    mod.__getattr__ = __getattr__
    sys.modules["mmcv._ext"] = mod
    return True
