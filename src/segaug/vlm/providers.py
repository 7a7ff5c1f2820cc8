"""VLM providers: one call, OpenAI chat-completions messages in, the model's answer text out.

A provider follows :class:`Provider`: ``name`` and ``model`` (both part of the cache key),
``params`` (the generation parameters, also part of the key) and
``complete(messages, on_request=None) -> str``. ``on_request`` is called right before each real
request (every HTTP attempt, retries included, or every local generation); the client uses it
to count requests against its budget, and it may raise to stop (see
:class:`segaug.vlm.client.RequestBudget`).

:class:`OpenAICompatibleProvider` speaks the OpenAI chat-completions HTTP API through the
``openai`` client. ``base_url`` is the part before ``/chat/completions``:

==============================  ================================================================
OpenAI                          ``https://api.openai.com/v1`` (``api_key_env="OPENAI_API_KEY"``)
Google Gemini (OpenAI-compat.)  ``https://generativelanguage.googleapis.com/v1beta/openai``
                                (``api_key_env="GEMINI_API_KEY"``, model e.g. ``gemini-2.5-flash``)
vLLM (``vllm serve <model>``)   ``http://<host>:8000/v1`` (``api_key_env=None`` unless the server
                                was started with ``--api-key``; model = the served model name)
==============================  ================================================================

Thinking models (Gemini 2.5, o-series) spend output tokens on reasoning: raise ``max_tokens``
if answers come back empty. The requests go through the ``openai`` Python client (its
timeouts, retries with backoff and ``Retry-After``, typed errors); structured outputs
(``response_format`` json_schema) are sent when asked and dropped once if the endpoint refuses
them (HTTP 400 naming the parameter).

:class:`LocalQwenProvider` runs Qwen2.5-VL in-process with ``transformers`` (a hub id cached
offline, or a local directory such as the tiny test model of :mod:`segaug.vlm.tiny`).

Errors
    :class:`VLMError` (a :class:`SegaugError`, so a script that lets it escape prints one line)
    means the service failed or answered something unusable: HTTP errors after the retries,
    4xx other than 408/409/429, timeouts, connection errors, a malformed response body.
    ``status`` holds the HTTP status when there was one and ``kind`` says ``http``, ``timeout``
    or ``connection``. The client turns a VLMError into a failed proposal (rule-based fallback),
    except the ones every request would repeat (see :class:`segaug.vlm.client.VLMPlacementClient`).
    Configuration mistakes (an API-key variable that is named but unset, a bad ``base_url``) are
    plain :class:`SegaugError` and are *not* caught by the client: every request would fail.

Secrets
    The API key is read from the environment at each call and only ever placed in the
    ``Authorization`` header. It is never stored on the provider, logged, cached or put in an
    error message: any text from the server that ends up in a message or in the returned answer
    has the key replaced by ``***``. Redirects are not followed, so the header never goes to
    another host. The ``openai`` client is made per call with the key read then, and it never
    falls back to ``OPENAI_API_KEY`` (nor sends ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from segaug.errors import SegaugError

log = logging.getLogger(__name__)

OnRequest = Callable[[], None] | None
_SNIPPET = 200


class VLMError(SegaugError):
    """The VLM service failed or its answer was unusable (see the module docstring).

    ``status`` is the HTTP status when there was one; ``retryable`` says whether another try
    could succeed (429, 5xx, timeouts, connection errors).
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        kind: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = kind  # "http", "timeout", "connection" (None: an unusable answer)


@runtime_checkable
class Provider(Protocol):
    """What the placement client needs from a VLM backend (module docstring)."""

    name: str
    model: str

    def complete(self, messages: list[dict], on_request: OnRequest = None) -> str:
        """The model's answer text to OpenAI-style ``messages``."""
        ...


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text


def _snippet(data: bytes | str, secret: str | None) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = redact(text, secret).strip().replace("\n", " ")
    return text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else "")


def message_content(raw: bytes, secret: str | None = None) -> str:
    """``choices[0].message.content`` of a chat-completions response body; VLMError if malformed.

    A content given as a list of parts (some servers do) is joined from its text parts.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        raise VLMError(f"provider error: response body is not JSON: {_snippet(raw, secret)!r}") from None
    if isinstance(data, dict) and "error" in data and "choices" not in data:
        raise VLMError(f"provider error: the server answered an error: {_snippet(json.dumps(data['error']), secret)}")
    try:
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise VLMError(
            f"provider error: malformed response, no choices[0].message.content: {_snippet(raw, secret)!r}"
        ) from None
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        raise VLMError(f"provider error: the answer has no text content (finish_reason={reason!r})")
    return redact(content, secret)


def _names_response_format(detail: str) -> bool:
    """Does an HTTP 400 body say that the structured-output parameter is the problem?"""
    low = detail.lower()
    return any(word in low for word in ("response_format", "json_schema", "structured output", "guided"))


class OpenAICompatibleProvider:
    """An OpenAI-compatible chat-completions endpoint, through the ``openai`` client (module docstring).

    Each :meth:`complete` is one ``client.chat.completions.create(model, messages, temperature,
    max_tokens[, response_format])``. The ``openai`` client does the retries: a 408, 409, 429, a
    5xx, a timeout (``timeout_s`` per attempt) or a connection error is retried up to
    ``max_retries`` times with its exponential backoff (0.5 s doubling, at most 8 s, with
    jitter) or the server's ``Retry-After`` (up to 60 s); anything else fails at once as a
    typed error, which is turned into a :class:`VLMError` with ``status`` and ``kind``
    (``http``, ``timeout``, ``connection``). Every HTTP attempt, retries included, calls
    ``on_request`` first (an ``httpx`` request hook), so the budget counts real requests; a
    non-2xx answer is logged as one warning line (redacted) as it arrives.

    ``structured``: send ``response_format: {"type": "json_schema", "json_schema": {"name":
    "placement", "schema": <the answer schema>, "strict": true}}`` (OpenAI, Gemini's
    OpenAI-compatible endpoint and vLLM's guided decoding accept it). An endpoint that answers
    HTTP 400 naming the parameter is told once in the log, asked again without it, and never
    sent it again by this provider.

    ``api_key_env`` names the environment variable holding the key (read at each call); None
    sends no ``Authorization`` header (a local vLLM) and never reads ``OPENAI_API_KEY``. A named
    variable that is unset or empty raises :class:`SegaugError` naming the variable.
    Redirects are not followed. ``min_pixels``/``max_pixels``/``factor`` describe how the served
    model resizes images (Qwen2.5-VL's processor): used to read ``resized_pixels`` answers.
    """

    name = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 60,
        max_retries: int = 4,
        temperature: float = 0.0,
        max_tokens: int = 256,
        structured: bool = False,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        factor: int = 28,
    ):
        parsed = urllib.parse.urlsplit(str(base_url))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SegaugError(
                f"vlm base_url {base_url!r} is not an http(s) URL; e.g. https://api.openai.com/v1 "
                "or http://localhost:8000/v1 for vLLM"
            )
        if not model:
            raise SegaugError("vlm model: name the model to ask (e.g. gpt-4o-mini, gemini-2.5-flash)")
        if int(max_retries) < 0 or float(timeout_s) <= 0 or int(max_tokens) < 1:
            raise SegaugError(
                f"vlm: max_retries must be >= 0, timeout_s > 0 and max_tokens >= 1, got "
                f"{max_retries}, {timeout_s}, {max_tokens}"
            )
        self.base_url = str(base_url).rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = str(model)
        self.api_key_env = api_key_env or None
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.structured = bool(structured)
        self.structured_supported = True  # False once the endpoint refused response_format
        self.min_pixels = int(min_pixels) if min_pixels is not None else None
        self.max_pixels = int(max_pixels) if max_pixels is not None else None
        self.factor = int(factor)
        self._plain_http_warned = False
        self._local = threading.local()
        self._http = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"OpenAICompatibleProvider(base_url={self.base_url!r}, model={self.model!r}, "
            f"api_key_env={self.api_key_env!r})"
        )

    @property
    def params(self) -> dict[str, Any]:
        """Generation parameters (part of the cache key): as configured, not as negotiated."""
        out: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.structured:
            out["response_format"] = "json_schema"
        return out

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of an image as the served Qwen2.5-VL processor resizes it."""
        from segaug.vlm.parse import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, smart_resize

        h, w = smart_resize(
            height, width, self.factor, self.min_pixels or QWEN_MIN_PIXELS, self.max_pixels or QWEN_MAX_PIXELS
        )
        return w, h

    # -------------------------------------------------------------------------------- helpers

    def api_key(self) -> str | None:
        """The key from ``api_key_env`` now; None when no variable is configured."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise SegaugError(
                f"the VLM API key variable {self.api_key_env} is not set: export {self.api_key_env}=<your key> "
                "before running, or set api_key_env to null for a server without authentication (e.g. a local vLLM)"
            )
        return key

    def _warn_plain_http(self) -> None:
        host = urllib.parse.urlsplit(self.url).hostname or ""
        loopback = host in ("localhost", "127.0.0.1", "::1")
        if self.url.startswith("http://") and not loopback and not self._plain_http_warned:
            log.warning("sending the API key from %s over plain http to %s", self.api_key_env, host)
            self._plain_http_warned = True

    def _on_http_request(self, request) -> None:
        hook = getattr(self._local, "on_request", None)
        if hook is not None:
            hook()  # may raise BudgetExhausted: the openai client lets it through
        self._local.attempts = getattr(self._local, "attempts", 0) + 1

    def _on_http_response(self, response) -> None:
        if response.status_code < 300:
            return
        try:
            detail = _snippet(response.read(), getattr(self._local, "key", None))
        except Exception:
            detail = ""
        self._local.detail = detail
        log.warning("HTTP %d from %s (model %s): %s", response.status_code, self.url, self.model, detail)

    def http_client(self):
        """The shared ``httpx`` client (connection pool, hooks, no redirects), made once."""
        with self._lock:
            if self._http is None:
                import openai

                self._http = openai.DefaultHttpxClient(  # the client openai builds, without redirects
                    follow_redirects=False,
                    trust_env=True,
                    event_hooks={"request": [self._on_http_request], "response": [self._on_http_response]},
                )
            return self._http

    def _client(self, key: str | None):
        import openai

        # only what we configure is sent: no OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment
        headers = {"User-Agent": "segaug-vlm", "OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}
        if key is not None:
            self._warn_plain_http()
        return openai.OpenAI(
            api_key=key or "",
            admin_api_key="",
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
            default_headers=headers,
            http_client=self.http_client(),
        )

    def response_format(self) -> dict:
        from segaug.vlm.parse import POINTS_SCHEMA

        schema = {k: v for k, v in POINTS_SCHEMA.items() if k != "$schema"}
        return {"type": "json_schema", "json_schema": {"name": "placement", "schema": schema, "strict": True}}

    def _error(self, e: Exception, key: str | None) -> VLMError:
        """A VLMError (status, kind, redacted one-line message) for an ``openai`` exception."""
        err = self._error_of(e, key)
        attempts = getattr(self._local, "attempts", 0)
        if attempts > 1:
            err = VLMError(f"{err} (gave up after {attempts} attempts)", status=err.status, kind=err.kind)
        return err

    def _error_of(self, e: Exception, key: str | None) -> VLMError:
        import openai

        if isinstance(e, openai.APIStatusError):
            detail = getattr(self._local, "detail", "") or _snippet(str(getattr(e, "message", e)), key)
            return VLMError(
                f"provider error: HTTP {e.status_code} from {self.url}: {detail}", status=e.status_code, kind="http"
            )
        if isinstance(e, openai.APITimeoutError):
            return VLMError(f"provider error: no answer from {self.url} within {self.timeout_s:g} s", kind="timeout")
        cause = e.__cause__ or e.__context__ or e
        return VLMError(
            f"provider error: cannot reach {self.url}: {redact(str(cause), key) or type(cause).__name__}",
            kind="connection",
        )

    # ------------------------------------------------------------------------------ the call

    def complete(self, messages: list[dict], on_request: OnRequest = None) -> str:
        """Ask the endpoint; return the answer text (retries and errors: class docstring)."""
        import openai

        key = self.api_key()
        client = self._client(key)
        kwargs = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if key is None:
            kwargs["extra_headers"] = {"Authorization": openai.Omit()}  # no key, and never OPENAI_API_KEY's
        if self.structured and self.structured_supported:
            kwargs["response_format"] = self.response_format()
        self._local.on_request, self._local.key, self._local.attempts = on_request, key, 0
        try:
            for _ in range(2):
                self._local.detail = ""
                try:
                    raw = client.chat.completions.with_raw_response.create(**kwargs)
                    break
                except openai.BadRequestError as e:
                    detail = self._local.detail or _snippet(str(e.message), key)
                    if "response_format" not in kwargs or not _names_response_format(detail):
                        raise
                    log.warning(
                        "%s at %s does not take structured outputs (HTTP 400: %s); asking without "
                        "response_format from now on",
                        self.model,
                        self.base_url,
                        detail,
                    )
                    self.structured_supported = False
                    del kwargs["response_format"]
            body = raw.http_response.content
        except openai.OpenAIError as e:
            raise self._error(e, key) from None
        finally:
            self._local.on_request = self._local.key = None
        return message_content(body, key)

    def close(self) -> None:
        """Close the shared connection pool (it is reopened on the next call)."""
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None


# ------------------------------------------------------------------------------- local Qwen


def decode_data_uri(url: str):
    """A PIL RGB image from a ``data:image/...;base64,...`` URI (SegaugError otherwise)."""
    from PIL import Image, UnidentifiedImageError

    head, sep, payload = str(url).partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64") and sep):
        raise SegaugError(f"LocalQwenProvider takes images as base64 data: URIs only, got {str(url)[:40]!r}")
    try:
        return Image.open(io.BytesIO(base64.b64decode(payload, validate=True))).convert("RGB")
    except (binascii.Error, UnidentifiedImageError, OSError) as e:
        raise SegaugError(f"LocalQwenProvider: cannot decode the image data URI ({e})") from None


def to_qwen_chat(messages: list[dict]) -> tuple[list[dict], list]:
    """OpenAI-style messages -> (Qwen chat conversation with image placeholders, PIL images in order)."""
    conversation, images = [], []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            conversation.append({"role": m["role"], "content": content})
            continue
        parts = []
        for p in content or []:
            if p.get("type") == "image_url":
                images.append(decode_data_uri(p["image_url"]["url"]))
                parts.append({"type": "image"})
            elif p.get("type") == "text":
                parts.append({"type": "text", "text": p["text"]})
            else:
                raise SegaugError(f"LocalQwenProvider: unsupported message part type {p.get('type')!r}")
        conversation.append({"role": m["role"], "content": parts})
    return conversation, images


class LocalQwenProvider:
    """Qwen2.5-VL run in-process (greedy decoding), loaded once on first use.

    ``model`` is a hub id (must be in the offline cache: checked here, by
    :func:`segaug.generative.hub.resolve`) or a local directory. ``device``: auto, cpu or cuda
    (bfloat16 on cuda, float32 on cpu). Each :meth:`complete` is one generation of at most
    ``max_new_tokens`` tokens; images are passed at their size, so the coordinates the model
    sees match the prompt's (very large photos cost many image tokens).
    """

    name = "local-qwen"

    def __init__(
        self,
        model: str = "Qwen/Qwen2.5-VL-7B-Instruct",
        device: str = "auto",
        max_new_tokens: int = 128,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
    ):
        from segaug.device import resolve_device
        from segaug.generative import hub

        self.model = str(model)
        self.ref = hub.resolve(self.model, "VLM model")
        self.device = resolve_device(device)
        self.max_new_tokens = int(max_new_tokens)
        self.min_pixels = int(min_pixels) if min_pixels is not None else None
        self.max_pixels = int(max_pixels) if max_pixels is not None else None
        self._net = None
        self._processor = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalQwenProvider(model={self.model!r}, device={self.device!r})"

    @property
    def params(self) -> dict[str, Any]:
        """Generation parameters (part of the cache key)."""
        out: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": False}
        if self.min_pixels is not None or self.max_pixels is not None:
            out.update(min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        return out

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of an image as this model's processor resizes it (its ``smart_resize``)."""
        from segaug.vlm.parse import smart_resize

        _, processor = self.load()
        ip = processor.image_processor
        size = getattr(ip, "size", None) or {}
        lo = self.min_pixels or size.get("shortest_edge") or getattr(ip, "min_pixels", None)
        hi = self.max_pixels or size.get("longest_edge") or getattr(ip, "max_pixels", None)
        h, w = smart_resize(height, width, ip.patch_size * ip.merge_size, lo, hi)
        return w, h

    def load(self):
        """Load (once) and return ``(model, processor)``."""
        with self._lock:
            if self._net is None:
                import torch
                from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

                dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
                log.info("loading %s on %s", self.model, self.device)
                kw = {k: v for k, v in (("min_pixels", self.min_pixels), ("max_pixels", self.max_pixels)) if v}
                self._processor = AutoProcessor.from_pretrained(self.ref, **kw)
                net = Qwen2_5_VLForConditionalGeneration.from_pretrained(self.ref, dtype=dtype)
                self._net = net.to(self.device).eval()
            return self._net, self._processor

    def complete(self, messages: list[dict], on_request: OnRequest = None) -> str:
        """Generate greedily from ``messages``; return the new text (special tokens removed)."""
        import torch

        conversation, images = to_qwen_chat(messages)
        net, processor = self.load()
        if on_request is not None:
            on_request()
        text = processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], images=images or None, return_tensors="pt").to(self.device)
        try:
            with torch.inference_mode():
                out = net.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        except torch.OutOfMemoryError as e:
            raise VLMError(f"provider error: {self.model} ran out of memory on {self.device} ({e})") from None
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return processor.batch_decode(new_tokens, skip_special_tokens=True)[0]
