"""Device selection shared by training and the generative models (imports only torch)."""

import torch

from segaug.errors import SegaugError


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; 'cuda' without a GPU is an error."""
    device = (device or "auto").lower()
    if device == "gpu":
        device = "cuda"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SegaugError("device 'cuda' requested but no CUDA GPU is visible; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise SegaugError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device
