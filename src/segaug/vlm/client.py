"""The placement client: prompt -> cache -> provider (within a request budget) -> strict parse.

:class:`VLMPlacementClient.propose` asks where to paste one object and returns a
:class:`Proposal`. It never raises for the failures a run must survive - a provider error
(:class:`~segaug.vlm.providers.VLMError`: HTTP errors after retries, timeouts, malformed
bodies), a spent :class:`RequestBudget`, an answer that does not parse - it returns a proposal
with ``error`` set and no points instead, and the caller falls back to rule-based placement and
records the reason. ``error`` always reads ``"<cause>: <details>"`` with cause one of
``provider error``, ``budget exhausted``, ``parse error``; ``Proposal.cause`` is the short form
the manifest shows (``HTTP 500``, ``timeout``, ``connection error``, ``parse error``, ...). Bad
inputs and configuration errors (an API-key variable that is named but unset, credentials the
endpoint refuses with HTTP 401 / 403, a mask of the wrong size) do raise
:class:`~segaug.errors.SegaugError`: they would fail every request. So do an HTTP 400 / 404 /
405 / 422, a refused connection or an unknown host before the endpoint has answered once in
this job (a wrong model name or URL): one line naming ``base_url``, the model and the status.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from segaug.errors import SegaugError
from segaug.vlm.cache import ResponseCache, cache_key
from segaug.vlm.parse import ANSWER_FORMATS, COORDINATES, parse_answer
from segaug.vlm.prompt import build_messages, image_digest, prompt_text
from segaug.vlm.providers import Provider, VLMError

log = logging.getLogger(__name__)

AUTH_STATUSES = (401, 403)  # refused credentials: a configuration error, not a fallback case
# every request would fail the same way (wrong model or URL, a request the endpoint refuses):
# fatal while the endpoint has not answered once in this job, a counted fallback afterwards
FATAL_STATUSES = (400, 404, 405, 422)


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
    cause: str | None = None  # short reason for the manifest: "HTTP 404", "timeout", "parse error", ...
    convention: str | None = None  # how the answer was read (parse_answer), e.g. "qwen point_2d resized_pixels 84x56"


def _cause(e: VLMError) -> str:
    if e.status is not None:
        return f"HTTP {e.status}"
    return {"timeout": "timeout", "connection": "connection error"}.get(e.kind or "", "provider error")


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
    ``answer_format`` / ``coordinates``: how answers are read (:func:`segaug.vlm.parse.parse_answer`);
    the prompt asks for that format (``auto`` asks for ours). ``resized_pixels`` answers are
    mapped back with the provider's ``resized_size(width, height)`` when it has one.

    Failing loudly: refused credentials (HTTP 401/403) always raise :class:`SegaugError`; an
    error that every request would repeat (HTTP 400/404/405/422, connection refused, an unknown
    host) raises it too while the endpoint has not answered once in this job, naming
    ``base_url``, the model and the status. Later, the same errors are counted fallbacks.
    """

    def __init__(
        self,
        provider: Provider,
        cache: ResponseCache | None = None,
        budget: RequestBudget | None = None,
        n_points: int = 5,
        answer_format: str = "auto",
        coordinates: str | None = None,
    ):
        if int(n_points) < 1:
            raise ValueError(f"n_points must be at least 1, got {n_points}")
        if answer_format not in ANSWER_FORMATS:
            raise SegaugError(f"vlm.answer_format: {answer_format!r}; known: {', '.join(ANSWER_FORMATS)}")
        if coordinates is not None and coordinates not in COORDINATES:
            raise SegaugError(f"vlm.coordinates: {coordinates!r}; known: {', '.join(COORDINATES)}")
        self.provider = provider
        self.cache = cache
        self.budget = budget
        self.n_points = int(n_points)
        self.answer_format = answer_format
        self.coordinates = coordinates
        self.answered = 0  # answers the provider returned in this job (cache hits excluded)
        self._hook_supported = _accepts_on_request(provider)

    def key(self, messages: list[dict], image: np.ndarray, mask_rgb: np.ndarray) -> str:
        """The cache key of this request (:func:`segaug.vlm.cache.cache_key`)."""
        params = dict(getattr(self.provider, "params", {}) or {})
        params["n_points"] = self.n_points
        return cache_key(
            self.provider.name, self.provider.model, prompt_text(messages), image_digest(image, mask_rgb), params
        )

    def _ask(self, messages: list[dict]) -> tuple[str | None, int, VLMError | str | None]:
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
            self._stop_if_fatal(e)
            msg = str(e)
            return (
                None,
                made,
                e
                if msg.startswith("provider error:")
                else VLMError(f"provider error: {msg}", status=e.status, kind=e.kind),
            )
        self.answered += 1
        return text, made, None

    def _stop_if_fatal(self, e: VLMError) -> None:
        """Raise SegaugError for errors every request would repeat (class docstring)."""
        where = getattr(self.provider, "base_url", None) or self.provider.name
        model = self.provider.model
        if e.status in AUTH_STATUSES:
            key = getattr(self.provider, "api_key_env", None)
            raise SegaugError(
                f"the VLM endpoint {where} refused the credentials (HTTP {e.status}) for model "
                f"{model!r}; check the key in the environment variable "
                f"{key or '(none configured: set vlm.api_key_env)'} and vlm.base_url"
            ) from None
        if self.answered:
            return
        detail = str(e).removeprefix("provider error: ")
        if e.status in FATAL_STATUSES:
            raise SegaugError(
                f"the VLM endpoint {where} answered HTTP {e.status} for model {model!r} on the first "
                f"request, so no object would be placed by the VLM; check vlm.base_url and vlm.model "
                f"({detail[:300]})"
            ) from None
        if e.kind == "connection":
            raise SegaugError(
                f"cannot reach the VLM endpoint {where} (model {model!r}): {detail[:300]}; is the server "
                "running and vlm.base_url right?"
            ) from None

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
        key = self.key(build_messages(*args, image_url=_no_url, answer_format=self.answer_format), image, mask_rgb)
        H, W = image.shape[:2]
        text = self.cache.get(key) if self.cache is not None else None
        cached = text is not None
        requests = 0
        if not cached:
            t0 = time.perf_counter()
            text, requests, error = self._ask(build_messages(*args, answer_format=self.answer_format))
            if error is not None:
                log.warning("VLM placement of %s failed (%d request(s)): %s", class_name, requests, error)
                cause = _cause(error) if isinstance(error, VLMError) else "budget exhausted"
                return Proposal(requests=requests, error=str(error), cause=cause)
            if self.cache is not None:
                self.cache.put(key, text, self._meta(class_name, size, surfaces, (W, H), time.perf_counter() - t0))
        log.debug("VLM answer for %s (key %s, cached=%s): %r", class_name, key, cached, text[:200])
        resized = self.provider.resized_size(W, H) if hasattr(self.provider, "resized_size") else None
        parsed = parse_answer(text, W, H, self.n_points, self.answer_format, self.coordinates, resized)
        if parsed.error:
            log.warning("VLM answer for %s did not parse: %s", class_name, parsed.error)
        return Proposal(
            points=list(parsed.points),
            cached=cached,
            requests=requests,
            dropped_outside=parsed.dropped_outside,
            error=parsed.error,
            cause="parse error" if parsed.error else None,
            convention=parsed.convention,
        )

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
