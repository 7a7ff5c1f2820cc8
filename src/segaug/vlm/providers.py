"""VLM providers: one call, OpenAI chat-completions messages in, the model's answer text out.

A provider follows :class:`Provider`: ``name`` and ``model`` (both part of the cache key),
``params`` (the generation parameters, also part of the key) and
``complete(messages, on_request=None) -> str``. ``on_request`` is called right before each real
request (every HTTP attempt, retries included, or every local generation); the client uses it
to count requests against its budget, and it may raise to stop (see
:class:`segaug.vlm.client.RequestBudget`).

:class:`OpenAICompatibleProvider` speaks the OpenAI chat-completions HTTP API with the standard
library. ``base_url`` is the part before ``/chat/completions``:

==============================  ================================================================
OpenAI                          ``https://api.openai.com/v1`` (``api_key_env="OPENAI_API_KEY"``)
Google Gemini (OpenAI-compat.)  ``https://generativelanguage.googleapis.com/v1beta/openai``
                                (``api_key_env="GEMINI_API_KEY"``, model e.g. ``gemini-2.5-flash``)
vLLM (``vllm serve <model>``)   ``http://<host>:8000/v1`` (``api_key_env=None`` unless the server
                                was started with ``--api-key``; model = the served model name)
==============================  ================================================================

Thinking models (Gemini 2.5, o-series) spend output tokens on reasoning: raise ``max_tokens``
if answers come back empty.

:class:`LocalQwenProvider` runs Qwen2.5-VL in-process with ``transformers`` (a hub id cached
offline, or a local directory such as the tiny test model of :mod:`segaug.vlm.tiny`).

Errors
    :class:`VLMError` (a :class:`SegaugError`, so a script that lets it escape prints one line)
    means the service failed or answered something unusable: HTTP errors after the retries,
    4xx other than 429, timeouts, a malformed response body. ``status`` holds the HTTP status
    when there was one. The client turns a VLMError into a failed proposal (rule-based fallback).
    Configuration mistakes (an API-key variable that is named but unset, a bad ``base_url``) are
    plain :class:`SegaugError` and are *not* caught by the client: every request would fail.

Secrets
    The API key is read from the environment at each call and only ever placed in the
    ``Authorization`` header. It is never stored on the provider, logged, cached or put in an
    error message: any text from the server that ends up in a message or in the returned answer
    has the key replaced by ``***``. Redirects are not followed, so the header never goes to
    another host.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Protocol, runtime_checkable

from segaug.errors import SegaugError

log = logging.getLogger(__name__)

OnRequest = Callable[[], None] | None
RETRYABLE_STATUS = frozenset({429}) | frozenset(range(500, 600))
_SNIPPET = 200


class VLMError(SegaugError):
    """The VLM service failed or its answer was unusable (see the module docstring).

    ``status`` is the HTTP status when there was one; ``retryable`` says whether another try
    could succeed (429, 5xx, timeouts, connection errors).
    """

    def __init__(self, message: str, status: int | None = None, retryable: bool = False,
                 retry_after: float | None = None):  # fmt: skip
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a 3xx becomes an HTTPError, and the Authorization header stays here."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


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


class OpenAICompatibleProvider:
    """An OpenAI-compatible chat-completions endpoint over HTTP (module docstring).

    Each :meth:`complete` POSTs ``{base_url}/chat/completions`` with ``{model, messages,
    temperature, max_tokens}``. A 429, a 5xx, a timeout (``timeout_s`` per attempt) or a
    connection error is retried up to ``max_retries`` times, waiting ``backoff_s * 2**k``
    seconds before retry ``k + 1`` (no jitter, so runs are reproducible), or the server's
    numeric ``Retry-After`` if longer, never more than ``max_backoff_s``. Any other status >= 300
    fails at once. ``sleep`` is injectable for tests.

    ``api_key_env`` names the environment variable holding the key (read at each call); None
    sends no ``Authorization`` header (a local vLLM). A named variable that is unset or empty
    raises :class:`SegaugError` naming the variable.
    """

    name = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 60,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30,
        temperature: float = 0.0,
        max_tokens: int = 256,
        sleep: Callable[[float], None] = time.sleep,
    ):
        parsed = urllib.parse.urlsplit(str(base_url))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SegaugError(
                f"vlm base_url {base_url!r} is not an http(s) URL; e.g. https://api.openai.com/v1 "
                "or http://localhost:8000/v1 for vLLM"
            )
        if not model:
            raise SegaugError("vlm model: name the model to ask (e.g. gpt-4o-mini, gemini-2.5-flash)")
        if int(max_retries) < 0 or float(timeout_s) <= 0:
            raise SegaugError(f"vlm: max_retries must be >= 0 and timeout_s > 0, got {max_retries}, {timeout_s}")
        self.base_url = str(base_url).rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = str(model)
        self.api_key_env = api_key_env or None
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._plain_http_warned = False

    def __repr__(self) -> str:
        return (f"OpenAICompatibleProvider(base_url={self.base_url!r}, model={self.model!r}, "
                f"api_key_env={self.api_key_env!r})")  # fmt: skip

    @property
    def params(self) -> dict[str, Any]:
        """Generation parameters (part of the cache key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

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

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "segaug-vlm"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
            self._warn_plain_http()
        return headers

    def _warn_plain_http(self) -> None:
        host = urllib.parse.urlsplit(self.url).hostname or ""
        loopback = host in ("localhost", "127.0.0.1", "::1")
        if self.url.startswith("http://") and not loopback and not self._plain_http_warned:
            log.warning("sending the API key from %s over plain http to %s", self.api_key_env, host)
            self._plain_http_warned = True

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based), see the class docstring."""
        delay = self.backoff_s * 2 ** (retry - 1)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.max_backoff_s)

    @staticmethod
    def _retry_after(headers) -> float | None:
        value = headers.get("Retry-After") if headers is not None else None
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return None  # absent, or an HTTP date: use the exponential backoff
        return seconds if seconds >= 0 else None

    def _post_once(self, body: bytes, headers: dict[str, str], key: str | None) -> bytes:
        """One POST; returns the body of a 2xx answer, raises VLMError (``retryable`` set) otherwise."""
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            try:
                detail = _snippet(e.read(), key)
            except (OSError, http.client.HTTPException):
                detail = ""
            raise VLMError(
                f"HTTP {e.code} from {self.url}: {detail}", status=e.code,
                retryable=e.code in RETRYABLE_STATUS, retry_after=self._retry_after(e.headers),
            ) from None
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError) or isinstance(e, TimeoutError):
                what = f"no answer from {self.url} within {self.timeout_s:g} s"
            else:
                what = f"cannot reach {self.url}: {redact(str(reason), key)}"
            raise VLMError(what, retryable=True) from None

    # ------------------------------------------------------------------------------ the call

    def complete(self, messages: list[dict], on_request: OnRequest = None) -> str:
        """POST ``messages``; return the answer text (retries and errors: class docstring)."""
        key = self.api_key()
        headers = self._headers(key)
        body = json.dumps(
            {"model": self.model, "messages": messages, "temperature": self.temperature, "max_tokens": self.max_tokens}
        ).encode("utf-8")
        attempts = self.max_retries + 1
        delay = 0.0
        for attempt in range(1, attempts + 1):
            if on_request is not None:
                on_request()  # may raise (budget spent): checked before waiting
            if attempt > 1:
                self.sleep(delay)
            log.debug("POST %s (model %s, attempt %d/%d)", self.url, self.model, attempt, attempts)
            try:
                raw = self._post_once(body, headers, key)
            except VLMError as e:
                if not e.retryable:
                    raise VLMError(f"provider error: {e}", status=e.status) from None
                if attempt == attempts:
                    raise VLMError(
                        f"provider error: {e} (gave up after {attempts} attempts)", status=e.status, retryable=True
                    ) from None
                delay = self.backoff(attempt, e.retry_after)
                log.warning("%s; retry %d/%d in %.2f s", e, attempt, self.max_retries, delay)
                continue
            return message_content(raw, key)
        raise AssertionError("unreachable")


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

    def __init__(self, model: str = "Qwen/Qwen2.5-VL-7B-Instruct", device: str = "auto", max_new_tokens: int = 128):
        from segaug.device import resolve_device
        from segaug.generative import hub

        self.model = str(model)
        self.ref = hub.resolve(self.model, "VLM model")
        self.device = resolve_device(device)
        self.max_new_tokens = int(max_new_tokens)
        self._net = None
        self._processor = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalQwenProvider(model={self.model!r}, device={self.device!r})"

    @property
    def params(self) -> dict[str, Any]:
        """Generation parameters (part of the cache key)."""
        return {"max_new_tokens": self.max_new_tokens, "do_sample": False}

    def load(self):
        """Load (once) and return ``(model, processor)``."""
        with self._lock:
            if self._net is None:
                import torch
                from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

                dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
                log.info("loading %s on %s", self.model, self.device)
                self._processor = AutoProcessor.from_pretrained(self.ref)
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
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return processor.batch_decode(new_tokens, skip_special_tokens=True)[0]
