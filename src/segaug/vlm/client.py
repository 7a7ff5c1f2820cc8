"""The placement client: prompt -> cache -> provider (within a request budget) -> strict parse.

:class:`VLMPlacementClient.propose` asks where to paste one object and returns a
:class:`Proposal`. It never raises for the failures a run must survive - a provider error
(:class:`~segaug.vlm.providers.VLMError`: HTTP errors after retries, timeouts, malformed
bodies), a spent :class:`RequestBudget`, an answer that does not parse - it returns a proposal
with ``error`` set and no points instead, and the caller falls back to rule-based placement and
records the reason. ``error`` always reads ``"<cause>: <details>"`` with cause one of
``provider error``, ``budget exhausted``, ``parse error``. Bad inputs and configuration errors
(an API-key variable that is named but unset, credentials the endpoint refuses with HTTP 401 /
403, a mask of the wrong size) do raise :class:`~segaug.errors.SegaugError`: they would fail
every request.

What is cached: the raw text of **every answer the provider returned** (an HTTP 200 with a
well-formed envelope, or a local generation), *including answers that then fail to parse*. At
temperature 0 asking again would most likely give the same answer and cost a request, and a
rerun of the workflow must reproduce the same placements with zero requests. Failures without
an answer (HTTP errors, timeouts, a spent budget) are not cached, so a rerun retries them. To
re-ask one prompt, delete its cache file (the key is in the log at debug level).

Requests: each real request (each HTTP attempt, retries included, or each local generation)
takes one unit of the budget; cache hits are free. ``Proposal.requests`` counts the requests
this proposal made.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from segaug.vlm.cache import ResponseCache, cache_key
from segaug.vlm.parse import parse_points
from segaug.vlm.prompt import build_messages, image_digest, prompt_text
from segaug.errors import SegaugError
from segaug.vlm.providers import Provider, VLMError

log = logging.getLogger(__name__)

AUTH_STATUSES = (401, 403)  # refused credentials: a configuration error, not a fallback case


class BudgetExhausted(VLMError):
    """The request budget is spent: no more requests may be made this run."""


class RequestBudget:
    """At most ``max_requests`` real requests (thread-safe); :meth:`take` one before each request."""

    def __init__(self, max_requests: int):
        if int(max_requests) < 0:
            raise ValueError(f"max_requests must be >= 0, got {max_requests}")
        self.max_requests = int(max_requests)
        self.used = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        return self.max_requests - self.used

    @property
    def exhausted(self) -> bool:
        return self.used >= self.max_requests

    def take(self) -> None:
        """Count one request; raise :class:`BudgetExhausted` (counting nothing) if none is left."""
        with self._lock:
            if self.used >= self.max_requests:
                raise BudgetExhausted(f"budget exhausted: all {self.max_requests} requests used")
            self.used += 1

    def __repr__(self) -> str:
        return f"RequestBudget(used={self.used}, max_requests={self.max_requests})"


@dataclass(frozen=True)
class Proposal:
    """Candidate object centres (x, y), best first, and how they were obtained.

    ``cached``: the answer came from the cache; ``requests``: real requests made for it;
    ``dropped_outside``: points the model gave outside the image; ``error``: why there are no
    points (None when the answer was fine, even if it held no point).
    """

    points: list[tuple[int, int]] = field(default_factory=list)
    cached: bool = False
    requests: int = 0
    dropped_outside: int = 0
    error: str | None = None


def _no_url(array: np.ndarray) -> str:
    return ""  # prompt_text leaves image URLs out: the image digest covers the pixels


def _accepts_on_request(provider) -> bool:
    try:
        return "on_request" in inspect.signature(provider.complete).parameters
    except (TypeError, ValueError):
        return False


class VLMPlacementClient:
    """Ask ``provider`` for up to ``n_points`` placement points (module docstring).

    ``cache`` (optional) makes reruns free; ``budget`` (optional) caps the real requests. A
    provider whose ``complete`` has no ``on_request`` parameter is charged one request per call.
    """

    def __init__(self, provider: Provider, cache: ResponseCache | None = None,
                 budget: RequestBudget | None = None, n_points: int = 5):  # fmt: skip
        if int(n_points) < 1:
            raise ValueError(f"n_points must be at least 1, got {n_points}")
        self.provider = provider
        self.cache = cache
        self.budget = budget
        self.n_points = int(n_points)
        self._hook_supported = _accepts_on_request(provider)

    def key(self, messages: list[dict], image: np.ndarray, mask_rgb: np.ndarray) -> str:
        """The cache key of this request (:func:`segaug.vlm.cache.cache_key`)."""
        params = dict(getattr(self.provider, "params", {}) or {})
        params["n_points"] = self.n_points
        return cache_key(self.provider.name, self.provider.model, prompt_text(messages),
                         image_digest(image, mask_rgb), params)  # fmt: skip

    def _ask(self, messages: list[dict]) -> tuple[str | None, int, str | None]:
        """Call the provider: (answer text or None, requests made, error or None)."""
        made = 0

        def on_request() -> None:
            nonlocal made
            if self.budget is not None:
                self.budget.take()
            made += 1

        try:
            if self._hook_supported:
                text = self.provider.complete(messages, on_request=on_request)
            else:
                on_request()
                text = self.provider.complete(messages)
        except BudgetExhausted as e:
            return None, made, str(e)
        except VLMError as e:
            if e.status in AUTH_STATUSES:  # every request would fail the same way: stop here
                key = getattr(self.provider, "api_key_env", None)
                raise SegaugError(
                    f"the VLM endpoint refused the credentials (HTTP {e.status}) for model "
                    f"{self.provider.model!r}; check the key in the environment variable "
                    f"{key or '(none configured: set vlm.api_key_env)'} and vlm.base_url"
                ) from None
            msg = str(e)
            return None, made, msg if msg.startswith("provider error:") else f"provider error: {msg}"
        return text, made, None

    def propose(
        self,
        image: np.ndarray,
        mask_rgb: np.ndarray,
        legend: Mapping[str, tuple[int, int, int]],
        class_name: str,
        size: tuple[int, int],
        surfaces: Sequence[str] | None = None,
    ) -> Proposal:
        """Up to ``n_points`` centres for a ``class_name`` of ``size`` (w, h) in ``image``."""
        args = (image, mask_rgb, legend, class_name, size, self.n_points, surfaces)
        key = self.key(build_messages(*args, image_url=_no_url), image, mask_rgb)  # no PNG encoding
        H, W = image.shape[:2]
        text = self.cache.get(key) if self.cache is not None else None
        cached = text is not None
        requests = 0
        if not cached:
            t0 = time.perf_counter()
            text, requests, error = self._ask(build_messages(*args))
            if error is not None:
                log.warning("VLM placement of %s failed (%d request(s)): %s", class_name, requests, error)
                return Proposal(requests=requests, error=error)
            if self.cache is not None:
                self.cache.put(key, text, self._meta(class_name, size, surfaces, (W, H), time.perf_counter() - t0))
        log.debug("VLM answer for %s (key %s, cached=%s): %r", class_name, key, cached, text[:200])
        parsed = parse_points(text, W, H, self.n_points)
        if parsed.error:
            log.warning("VLM answer for %s did not parse: %s", class_name, parsed.error)
        return Proposal(points=list(parsed.points), cached=cached, requests=requests,
                        dropped_outside=parsed.dropped_outside, error=parsed.error)  # fmt: skip

    def _meta(self, class_name, size, surfaces, image_size, elapsed_s: float) -> dict:
        """What a cache entry records besides the answer (never credentials)."""
        return {
            "provider": self.provider.name,
            "model": self.provider.model,
            "params": dict(getattr(self.provider, "params", {}) or {}),
            "n_points": self.n_points,
            "class_name": class_name,
            "object_size": [int(v) for v in size],
            "image_size": list(image_size),
            "surfaces": list(surfaces or []),
            "elapsed_s": round(elapsed_s, 3),
        }
