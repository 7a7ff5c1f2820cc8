"""VLM placement library: prompt, parsers (ours, Qwen, Gemini), cache, providers, client, tiny local Qwen.

The HTTP provider is tested against a real server on loopback (``ThreadingHTTPServer`` on
127.0.0.1, port chosen by the OS) that speaks the OpenAI chat-completions format; each test
sets how it answers (``server.reply = ...``). The ``openai`` client does the retries and waits
for real, so retried replies carry a short ``Retry-After`` (it honours fractional seconds).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segaug.errors import SegaugError
from segaug.vlm import (
    LocalQwenProvider,
    OpenAICompatibleProvider,
    RequestBudget,
    ResponseCache,
    VLMPlacementClient,
    build_messages,
    image_digest,
    parse_answer,
    parse_points,
    prompt_text,
)
from segaug.vlm.cache import cache_key
from segaug.vlm.providers import VLMError, message_content

W, H = 64, 48
LEGEND = {"road": (128, 64, 128), "building": (70, 70, 70), "car": (0, 0, 142)}
# a throwaway value made per test run; no key-like string lives in the tree
SECRET = "test-" + secrets.token_hex(16)
KEY_ENV = "SEGAUG_TEST_VLM_KEY"


# ------------------------------------------------------------------------------ fixtures


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random photo and a mask: building on top, road on the bottom half."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = np.empty((H, W, 3), np.uint8)
    mask[: H // 2] = LEGEND["building"]
    mask[H // 2 :] = LEGEND["road"]
    return image, mask


def points_json(*pts) -> str:
    return json.dumps({"points": [{"x": x, "y": y} for x, y in pts]})


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0


def chat(content: str) -> Reply:
    """A 200 chat-completions answer whose message content is ``content``."""
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }
    return Reply(body=json.dumps(body).encode())


def status(code: int, body: str = '{"error": {"message": "nope"}}', **headers) -> Reply:
    return Reply(status=code, body=body.encode(), headers={k.replace("_", "-"): str(v) for k, v in headers.items()})


class FakeOpenAI:
    """State of the loopback server: what it received, and ``reply(n, request) -> Reply``."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.reply: Callable[[int, dict], Reply] = lambda n, req: chat(points_json((10, 30)))
        self.url = ""

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)


def make_handler(state: FakeOpenAI):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            req = {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "body": json.loads(raw),
                "headers": dict(self.headers),
            }
            with state.lock:
                state.requests.append(req)
                n = len(state.requests)
            reply = state.reply(n, req)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    state = FakeOpenAI()
    httpd = QuietServer(("127.0.0.1", 0), make_handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def provider(server: FakeOpenAI, **kw) -> OpenAICompatibleProvider:
    kw.setdefault("api_key_env", None)
    kw.setdefault("timeout_s", 5)
    return OpenAICompatibleProvider(server.url, "test-vlm", **kw)


def propose(client: VLMPlacementClient, seed: int = 0, class_name: str = "car"):
    image, mask = scene(seed)
    return client.propose(image, mask, LEGEND, class_name, (12, 8), surfaces=["road"])


# ------------------------------------------------------------------------------ the prompt


def decode_png(url: str) -> np.ndarray:
    head, payload = url.split(",", 1)
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB"))


def test_build_messages_holds_images_legend_object_and_schema():
    image, mask = scene()
    msgs = build_messages(image, mask, LEGEND, "car", (12, 8), n_points=3, surfaces=["road"])
    assert [m["role"] for m in msgs] == ["system", "user"]
    system = msgs[0]["content"]
    assert '{"points": [{"x": <int>, "y": <int>}, ...]}' in system
    assert "CENTRE" in system and "top-left" in system
    parts = msgs[1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    np.testing.assert_array_equal(decode_png(parts[0]["image_url"]["url"]), image)  # photo first
    np.testing.assert_array_equal(decode_png(parts[1]["image_url"]["url"]), mask)  # lossless mask
    text = parts[2]["text"]
    for needle in (
        "rgb(128, 64, 128) = road",
        "rgb(0, 0, 142) = car",
        "one car, 12 x 8 pixels",
        f"{W} x {H} pixels",
        "stand on: road",
        "up to 3 candidate",
    ):
        assert needle in text, needle
    pt = prompt_text(msgs)
    assert "data:image" not in pt and pt.count("[image_url]") == 2 and "stand on: road" in pt
    stub = build_messages(image, mask, LEGEND, "car", (12, 8), n_points=3, surfaces=["road"], image_url=lambda a: "")
    assert prompt_text(stub) == pt  # the client keys its cache without encoding the PNGs


def test_build_messages_rejects_bad_inputs():
    image, mask = scene()
    with pytest.raises(SegaugError, match="mask_rgb is 32x48 but the image is 64x48"):
        build_messages(image, mask[:, :32], LEGEND, "car", (12, 8))
    with pytest.raises(SegaugError, match=r"surfaces \['water'\] are not classes of the legend"):
        build_messages(image, mask, LEGEND, "car", (12, 8), surfaces=["water"])
    with pytest.raises(SegaugError, match="uint8 HxWx3"):
        build_messages(image.astype(np.float32), mask, LEGEND, "car", (12, 8))
    with pytest.raises(SegaugError, match="size"):
        build_messages(image, mask, LEGEND, "car", (0, 8))


def test_image_digest_covers_pixels_and_shape():
    image, mask = scene()
    d = image_digest(image, mask)
    assert d == image_digest(image.copy(), mask.copy())
    changed = image.copy()
    changed[0, 0, 0] ^= 1
    assert image_digest(changed, mask) != d
    assert image_digest(image.reshape(W, H, 3), mask) != d  # same bytes, other shape
    assert image_digest(mask, image) != d  # order matters


# ------------------------------------------------------------------------------ the parser


@pytest.mark.parametrize(
    "text, points",
    [
        ('{"points": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}', [(1, 2), (3, 4)]),
        ('  \n{"points": [{"x": 1, "y": 2}]}\n ', [(1, 2)]),
        ('```json\n{"points": [{"x": 1, "y": 2}]}\n```', [(1, 2)]),
        ('```\n{"points": [{"x": 1, "y": 2}]}\n```', [(1, 2)]),
        ('{"points": [{"x": 5.0, "y": 7}]}', [(5, 7)]),  # integral floats are integers (Draft 7)
        ('{"points": []}', []),  # nothing fits: not an error
    ],
)
def test_parse_accepts(text, points):
    r = parse_points(text, W, H, max_points=5)
    assert r.error is None and r.points == points and r.dropped_outside == 0


@pytest.mark.parametrize(
    "text, why",
    [
        ('Here you go: {"points": [{"x": 1, "y": 2}]}', "not valid JSON"),
        ('{"points": [{"x": 1, "y": 2}]} I hope this helps!', "not valid JSON"),
        ('Sure!\n```json\n{"points": [{"x": 1, "y": 2}]}\n```', "not valid JSON"),
        ('```json\n{"points": [{"x": 1, "y": 2}]}\n```\nThese are on the road.', "not valid JSON"),
        ('{"points": [{"x": 1, "y": 2}], "reason": "road"}', "schema mismatch at top level"),
        ('{"points": [{"x": 1, "y": 2, "score": 0.9}]}', "schema mismatch at points/0"),
        ('{"points": [{"x": 1.5, "y": 2}]}', "schema mismatch at points/0/x"),
        ('{"points": [{"x": "1", "y": 2}]}', "schema mismatch at points/0/x"),
        ('{"points": [{"x": true, "y": 2}]}', "schema mismatch at points/0/x"),
        ('{"points": [{"x": 1}]}', "schema mismatch at points/0"),
        ('{"points": [[1, 2]]}', "schema mismatch at points/0"),
        ('{"point": []}', "schema mismatch at top level"),
        ('{"points": [{"x": NaN, "y": 2}]}', "not valid JSON"),
        ('{"points": [], "points": []}', "duplicate key"),
        ('[{"x": 1, "y": 2}]', "schema mismatch at top level"),
        ("", "not valid JSON"),
    ],
)
def test_parse_rejects(text, why):
    r = parse_points(text, W, H, max_points=5)
    assert r.points == [] and r.error.startswith("parse error: ") and why in r.error


def test_parse_drops_outside_and_truncates():
    text = points_json((-1, 5), (W, 5), (5, H), (0, 0), (W - 1, H - 1), (1, 1), (2, 2))
    r = parse_points(text, W, H, max_points=2)
    assert r.error is None and r.points == [(0, 0), (W - 1, H - 1)] and r.dropped_outside == 3


def test_parse_never_raises_on_junk():
    for junk in ("{", "```json\n```", "null", '{"points": null}', "\x00\xff", "1e999", None):
        assert parse_points(junk, W, H, 5).error


# ------------------------------------------------------------------------------ the cache


def test_cache_roundtrip_layout_and_no_credentials(tmp_path, caplog):
    cache = ResponseCache(tmp_path)
    key = cache_key("p", "m", "prompt", "digest", {"temperature": 0.0})
    assert cache.get(key) is None
    auth = {"Authorization": "Bearer " + SECRET}  # the per-run throwaway value, never a literal
    meta = {"model": "m", "params": {"max_tokens": 256}, "headers": auth, "api_key": SECRET}
    with caplog.at_level(logging.WARNING):
        path = cache.put(key, '{"points": []}', meta)
    assert path == tmp_path / key[:2] / f"{key}.json"
    assert cache.get(key) == '{"points": []}' and key in cache
    entry = json.loads(path.read_text())
    assert entry["meta"] == {"model": "m", "params": {"max_tokens": 256}}  # headers and api_key dropped
    assert "Bearer" not in path.read_text() and SECRET not in path.read_text()
    assert cache_key("p", "m", "prompt", "digest", {"temperature": 0.5}) != key


def test_cache_bad_entry_is_a_miss_and_bad_key_an_error(tmp_path):
    cache = ResponseCache(tmp_path)
    key = "ab" * 32
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_text("{truncated")
    assert cache.get(key) is None
    with pytest.raises(ValueError, match="64 lowercase hex"):
        cache.get("../../etc/passwd")


# ------------------------------------------------------------------------------ HTTP provider


def test_good_points_over_http(server):
    server.reply = lambda n, req: chat(points_json((10, 30), (50.0, 40)))
    client = VLMPlacementClient(provider(server, temperature=0.0, max_tokens=99), n_points=4)
    prop = propose(client)
    assert prop.error is None and prop.points == [(10, 30), (50, 40)]
    assert prop.requests == 1 and not prop.cached and prop.dropped_outside == 0
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] is None  # no key configured
    body = req["body"]
    assert body["model"] == "test-vlm" and body["temperature"] == 0.0 and body["max_tokens"] == 99
    parts = body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]


def test_malformed_json_content_is_a_parse_error_and_is_cached(server, tmp_path):
    server.reply = lambda n, req: chat("The car fits at (10, 30) on the road.")
    client = VLMPlacementClient(provider(server), ResponseCache(tmp_path))
    prop = propose(client)
    assert prop.points == [] and prop.requests == 1 and prop.error.startswith("parse error: not valid JSON")
    again = propose(client)  # the raw answer was cached: no second request
    assert again.cached and again.requests == 0 and again.error == prop.error and server.count == 1


def test_points_outside_the_image_are_dropped_and_counted(server):
    server.reply = lambda n, req: chat(points_json((-5, 10), (W, 10), (10, H), (20, 40)))
    prop = propose(VLMPlacementClient(provider(server)))
    assert prop.error is None and prop.points == [(20, 40)] and prop.dropped_outside == 3


def test_429_is_retried_after_retry_after(server):
    server.reply = lambda n, req: status(429, Retry_After="0.01") if n <= 3 else chat(points_json((1, 2)))
    prop = propose(VLMPlacementClient(provider(server, max_retries=4)))
    assert prop.error is None and prop.points == [(1, 2)] and prop.requests == 4 and server.count == 4


def test_retry_after_is_respected(server):
    server.reply = lambda n, req: status(429, Retry_After="0.4") if n <= 2 else chat(points_json((1, 2)))
    t0 = time.perf_counter()
    prop = propose(VLMPlacementClient(provider(server, max_retries=4)))
    assert time.perf_counter() - t0 >= 0.8  # the server's 0.4 s, twice (the openai client's own backoff is 0.5 s+)
    assert prop.error is None and prop.requests == 3


def test_500_until_the_budget_is_spent(server):
    server.reply = lambda n, req: status(503, Retry_After="0.01")
    budget = RequestBudget(3)
    client = VLMPlacementClient(provider(server, max_retries=10), budget=budget)
    prop = propose(client)
    assert prop.points == [] and prop.error.startswith("budget exhausted") and prop.cause == "budget exhausted"
    assert prop.requests == 3 == server.count and budget.exhausted and budget.used == 3
    later = propose(client, seed=1)
    assert later.error.startswith("budget exhausted") and later.requests == 0 and server.count == 3


def test_5xx_gives_up_after_max_retries(server):
    server.reply = lambda n, req: status(500, '{"error": "overloaded"}', Retry_After="0.01")
    budget = RequestBudget(100)
    prop = propose(VLMPlacementClient(provider(server, max_retries=2), budget=budget))
    assert prop.error.startswith("provider error: HTTP 500") and "gave up after 3 attempts" in prop.error
    assert "overloaded" in prop.error and prop.requests == 3 == server.count == budget.used
    assert prop.cause == "HTTP 500"


@pytest.mark.parametrize("code", [400, 404, 422])
def test_a_4xx_on_the_first_request_stops_the_job(server, code):
    """Wrong model name or URL, a request the endpoint refuses: every request would fail alike."""
    server.reply = lambda n, req: status(code, '{"error": {"message": "model does not support images"}}')
    with pytest.raises(SegaugError) as exc:
        propose(VLMPlacementClient(provider(server)))
    msg = str(exc.value)
    assert not isinstance(exc.value, VLMError) and "\n" not in msg
    assert f"HTTP {code}" in msg and server.url in msg and "'test-vlm'" in msg and "does not support images" in msg
    assert server.count == 1  # not retried


def test_a_4xx_after_answers_is_a_counted_fallback(server):
    server.reply = lambda n, req: chat(points_json((1, 2))) if n == 1 else status(404)
    client = VLMPlacementClient(provider(server))
    assert propose(client).points == [(1, 2)]
    prop = propose(client, seed=1)
    assert prop.error.startswith("provider error: HTTP 404") and prop.cause == "HTTP 404" and server.count == 2


def test_refused_connection_stops_the_job():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = OpenAICompatibleProvider(f"http://127.0.0.1:{port}/v1", "test-vlm", api_key_env=None, max_retries=1)
    budget = RequestBudget(10)
    with pytest.raises(
        SegaugError, match=rf"cannot reach the VLM endpoint http://127.0.0.1:{port}/v1 \(model 'test-vlm'\)"
    ):
        propose(VLMPlacementClient(p, budget=budget))
    assert budget.used == 2  # the openai client retried once


def test_slow_reply_times_out_is_retried_then_fails(server):
    server.reply = lambda n, req: Reply(body=chat(points_json((1, 2))).body, delay_s=2.0)
    t0 = time.perf_counter()
    prop = propose(VLMPlacementClient(provider(server, timeout_s=0.2, max_retries=1)))
    assert time.perf_counter() - t0 < 1.8  # did not wait for the slow server
    assert prop.error.startswith("provider error: no answer") and "within 0.2 s" in prop.error
    assert prop.requests == 2 == server.count and prop.cause == "timeout"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=b"<html>gateway</html>"),
        Reply(body=b'{"choices": []}'),
        Reply(body=b'{"choices": [{"message": {"content": null}, "finish_reason": "length"}]}'),
    ],
)
def test_malformed_response_body_is_a_provider_error_not_cached(server, tmp_path, reply):
    server.reply = lambda n, req: reply
    cache = ResponseCache(tmp_path)
    prop = propose(VLMPlacementClient(provider(server), cache))
    assert prop.error.startswith("provider error: ") and prop.requests == 1 == server.count
    assert not list(tmp_path.rglob("*.json"))  # nothing to cache: the next run asks again


def test_redirects_are_not_followed(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.reply = lambda n, req: status(307, Location=server.url + "/elsewhere")
    prop = propose(VLMPlacementClient(provider(server, api_key_env=KEY_ENV)))
    assert prop.error.startswith("provider error: HTTP 307") and server.count == 1


def test_structured_outputs_send_the_answer_schema(server):
    """OpenAI structured outputs: https://platform.openai.com/docs/guides/structured-outputs
    (``response_format: {"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}``)."""
    client = VLMPlacementClient(provider(server, structured=True, max_tokens=1024))
    assert propose(client).points == [(10, 30)]
    body = server.requests[0]["body"]
    assert body["max_tokens"] == 1024
    rf = body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True and rf["json_schema"]["name"]
    assert rf["json_schema"]["schema"]["required"] == ["points"]
    assert "response_format" not in provider(server).params  # structured=False by default in the library


def test_structured_outputs_rejected_are_dropped_once_and_remembered(server, caplog):
    def reply(n, req):
        if "response_format" in req["body"]:
            return status(400, '{"error": {"message": "Unknown parameter: \'response_format\'."}}')
        return chat(points_json((10, 30)))

    server.reply = reply
    client = VLMPlacementClient(provider(server, structured=True))
    with caplog.at_level(logging.WARNING):
        first, second = propose(client), propose(client, seed=1)
    assert first.points == second.points == [(10, 30)] and first.requests == 2 and second.requests == 1
    assert ["response_format" in r["body"] for r in server.requests] == [True, False, False]
    said = [r.message for r in caplog.records if "structured outputs" in r.message]
    assert len(said) == 1 and "test-vlm" in said[0] and "response_format" in said[0]


def test_message_content_accepts_text_parts():
    parts = [{"type": "text", "text": '{"points": '}, {"type": "text", "text": "[]}"}]
    body = {"choices": [{"message": {"content": parts}}]}
    assert message_content(json.dumps(body).encode()) == '{"points": []}'
    with pytest.raises(VLMError, match="the server answered an error"):
        message_content(b'{"error": {"message": "quota"}}')


def test_cache_prevents_a_second_request(server, tmp_path):
    cache = ResponseCache(tmp_path / "vlm")
    client = VLMPlacementClient(provider(server), cache, RequestBudget(10))
    first = propose(client)
    assert first.points == [(10, 30)] and not first.cached and first.requests == 1
    second = propose(client)
    assert second.cached and second.requests == 0 and second.points == first.points
    assert server.count == 1 and client.budget.used == 1
    files = list((tmp_path / "vlm").rglob("*.json"))
    assert len(files) == 1 and files[0].parent.name == files[0].stem[:2]
    entry = json.loads(files[0].read_text())
    assert entry["meta"]["model"] == "test-vlm" and entry["meta"]["class_name"] == "car"
    # another image, another class or other generation params are other keys
    propose(client, seed=1)
    propose(client, class_name="truck")
    client2 = VLMPlacementClient(provider(server, temperature=0.7), cache)
    propose(client2)
    assert server.count == 4


def test_api_key_is_sent_as_bearer_and_never_leaks(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    echo = lambda req: json.dumps({"error": {"message": f"got {req['auth']}"}})
    replies = {
        1: lambda req: chat(points_json((10, 30))),
        2: lambda req: chat(f"my key is {req['auth']}"),  # a hostile server echoes it in the answer
        3: lambda req: status(500, echo(req), Retry_After="0.01"),  # ... in a retried error body (logged)
        4: lambda req: status(401, echo(req)),  # ... in a final error
    }
    server.reply = lambda n, req: replies[n](req)
    cache = ResponseCache(tmp_path / "vlm")
    client = VLMPlacementClient(provider(server, api_key_env=KEY_ENV, max_retries=3), cache)
    props = [propose(client, seed=0), propose(client, seed=1)]
    with pytest.raises(SegaugError, match=f"refused the credentials \\(HTTP 401\\).*{KEY_ENV}") as refused:
        propose(client, seed=2)  # a refused key stops the run: it is not a fallback case
    assert not isinstance(refused.value, VLMError)
    assert all(r["auth"] == f"Bearer {SECRET}" for r in server.requests) and server.count == 4
    assert props[0].points == [(10, 30)]
    assert props[1].error.startswith("parse error")
    leaks = [repr(p) for p in props] + [str(refused.value)]
    leaks += [f.read_text() for f in tmp_path.rglob("*") if f.is_file()]
    leaks += [caplog.text, repr(client.provider)]
    assert all(SECRET not in text for text in leaks)
    assert "Bearer ***" in caplog.text  # the echoed key was redacted, not dropped silently


def test_unset_key_variable_names_the_variable(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)  # set while configuring: read at call time, not here
    p = provider(server, api_key_env=KEY_ENV)
    monkeypatch.delenv(KEY_ENV)
    budget = RequestBudget(5)
    with pytest.raises(SegaugError, match=f"variable {KEY_ENV} is not set") as exc:
        propose(VLMPlacementClient(p, budget=budget))
    assert not isinstance(exc.value, VLMError)  # a configuration error: not a fallback case
    assert server.count == 0 and budget.used == 0


def test_bad_base_url_is_a_user_error():
    with pytest.raises(SegaugError, match="is not an http"):
        OpenAICompatibleProvider("file:///etc", "m")


def test_no_key_configured_sends_no_key_even_if_openai_variables_are_set(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-" + SECRET)
    assert propose(VLMPlacementClient(provider(server, api_key_env=None))).points == [(10, 30)]
    (req,) = server.requests
    assert req["auth"] is None and SECRET not in json.dumps(req)


def test_retries_and_timeout_reach_the_openai_client(server):
    p = provider(server, max_retries=7, timeout_s=12)
    client = p._client(None)
    assert client.max_retries == 7 and client.timeout == 12 and str(client.base_url).startswith(server.url)


# ------------------------------------------------------------------------------ local Qwen


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> Path:
    from segaug.vlm.tiny import build_tiny_qwen

    return build_tiny_qwen(tmp_path_factory.mktemp("models") / "tiny-qwen", seed=0)


def test_tiny_local_qwen_answers_text_that_falls_back(tiny_qwen, tmp_path):
    qwen = LocalQwenProvider(str(tiny_qwen), device="cpu", max_new_tokens=12)
    image, mask = scene()
    text = qwen.complete(build_messages(image, mask, LEGEND, "car", (12, 8), surfaces=["road"]))
    assert isinstance(text, str) and text
    client = VLMPlacementClient(qwen, ResponseCache(tmp_path), RequestBudget(5))
    prop = propose(client)
    assert prop.points == [] and prop.error.startswith("parse error") and prop.requests == 1
    again = propose(client)
    assert again.cached and again.requests == 0 and client.budget.used == 1


def test_local_qwen_passes_min_max_pixels_to_its_processor(tiny_qwen):
    """The tiny processor has 4 px patches merged 2x2 (factor 8) and 64..4096 pixels by default."""
    qwen = LocalQwenProvider(str(tiny_qwen), device="cpu", max_new_tokens=4)
    assert qwen.resized_size(W, H) == (64, 48)  # 3072 pixels: inside the default range
    small = LocalQwenProvider(str(tiny_qwen), device="cpu", max_new_tokens=4, min_pixels=64, max_pixels=1024)
    _, processor = small.load()
    assert processor.image_processor.size["longest_edge"] == 1024
    assert small.resized_size(W, H) == (32, 24)  # scaled down to at most 1024 pixels, multiples of 8
    assert small.params["max_pixels"] == 1024 and "max_pixels" not in qwen.params  # in the cache key
    text = '[{"point_2d": [16, 12], "label": "car"}]'  # the centre of what the model saw
    client = VLMPlacementClient(small, answer_format="qwen")
    from segaug.vlm import parse_answer

    assert parse_answer(text, W, H, 5, "qwen", resized=small.resized_size(W, H)).points == [(32, 24)]
    assert client.coordinates is None


def test_tiny_qwen_build_is_deterministic(tiny_qwen, tmp_path):
    from safetensors.numpy import load_file

    from segaug.vlm.tiny import build_tiny_qwen

    other = build_tiny_qwen(tmp_path / "again", seed=0)
    a, b = load_file(tiny_qwen / "model.safetensors"), load_file(other / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_uncached_hub_model_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SegaugError, match="'segaug-test/no-such-vl-model' is not in the Hugging Face cache"):
        LocalQwenProvider("segaug-test/no-such-vl-model", device="cpu")


# ------------------------------------------------------------------------------ native answer formats
#
# Where the shapes come from (the providers' own documentation):
# - Qwen2.5-VL, cookbook "spatial understanding"
#   (https://github.com/QwenLM/Qwen2.5-VL/blob/main/cookbooks/spatial_understanding.ipynb): grounding
#   answers are a JSON list in a ```json fence of {"bbox_2d": [x1, y1, x2, y2], "label": ...} or
#   {"point_2d": [x, y], "label": ...}, in absolute pixels of the image *as the processor resized it*
#   (qwen-vl-utils, src/qwen_vl_utils/vision_process.py: smart_resize, factor 28). Alibaba Cloud Model
#   Studio's Qwen-VL localisation guide says the same: "两类坐标均相对于缩放后的图像左上角的绝对值，
#   单位为像素" (both kinds of coordinates are absolute pixels from the top-left of the resized image).
# - Gemini, "Spatial understanding" cookbook (https://github.com/google-gemini/cookbook, quickstarts/
#   Spatial_understanding_3d.ipynb) and https://ai.google.dev/gemini-api/docs/image-understanding:
#   "The coordinates are in the image frame, and are normalized into an integer between 0-1000. The
#   top left is (0,0) and the bottom right is (1000,1000). The point is in [y, x] order, and 2d
#   bounding boxes are in y_min, x_min, y_max, x_max order." Vertex AI, bounding box detection
#   (https://cloud.google.com/vertex-ai/generative-ai/docs/bounding-box-detection): "Output: Bounding
#   boxes in the [y_min, x_min, y_max, x_max] format ... Coordinate values are normalized to 0-1000
#   for every image."
PW, PH = 640, 480  # a photo; Qwen2.5-VL sees it as 644 x 476 (smart_resize: multiples of 28)
QWEN_POINTS = (
    '```json\n[\n\t{"point_2d": [322, 238], "label": "car"},\n\t{"point_2d": [161, 357], "label": "car"}\n]\n```'
)
QWEN_BOXES = '```json\n[\n\t{"bbox_2d": [300, 200, 344, 276], "label": "car"}\n]\n```'
GEMINI_POINTS = '```json\n[\n  {"point": [500, 250], "label": "car"}\n]\n```'
GEMINI_BOXES = '[{"box_2d": [400, 100, 600, 300], "label": "car"}]'


def test_smart_resize_matches_the_qwen_processor():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as hf

    from segaug.vlm.parse import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, smart_resize

    assert smart_resize(PH, PW) == (476, 644)
    for h, w in [(480, 640), (72, 96), (1080, 1920), (4000, 6000), (20, 30), (512, 512), (333, 1000)]:
        for lo, hi in [(QWEN_MIN_PIXELS, QWEN_MAX_PIXELS), (256 * 28 * 28, 1280 * 28 * 28), (64, 4096)]:
            assert smart_resize(h, w, 28, lo, hi) == hf(h, w, 28, lo, hi), (h, w, lo, hi)


@pytest.mark.parametrize(
    "text, fmt, coords, points, convention",
    [
        (QWEN_POINTS, "auto", None, [(320, 240), (160, 360)], "qwen point_2d resized_pixels 644x476"),
        (QWEN_POINTS, "qwen", None, [(320, 240), (160, 360)], "qwen point_2d resized_pixels 644x476"),
        (QWEN_BOXES, "auto", None, [(320, 240)], "qwen bbox_2d resized_pixels 644x476"),  # the box centre
        (QWEN_POINTS, "qwen", "pixels", [(322, 238), (161, 357)], "qwen point_2d pixels"),
        (QWEN_POINTS, "qwen", "norm1000", [(206, 114), (103, 171)], "qwen point_2d norm1000"),  # Qwen3-VL
        (GEMINI_POINTS, "auto", None, [(160, 240)], "gemini point norm1000"),  # [y, x]
        (GEMINI_BOXES, "gemini", None, [(128, 240)], "gemini box_2d norm1000"),
        ("[[10, 20], [30, 40]]", "auto", None, [(10, 20), (30, 40)], "segaug [[x,y]] pixels"),
        ('{"points": [[10, 20]]}', "segaug", None, [(10, 20)], "segaug points[[x,y]] pixels"),
        ('{"points": [{"x": 10, "y": 20}]}', "auto", None, [(10, 20)], "segaug points[{x,y}] pixels"),
        ("[[0.5, 0.25]]", "auto", "norm1", [(320, 120)], "segaug [[x,y]] norm1"),
        ('[{"point_2d": [644, 476], "label": "edge"}]', "qwen", None, [(639, 479)], None),  # the far edge
        ("[]", "qwen", None, [], "qwen [] resized_pixels 644x476"),  # nothing fits: not an error
    ],
)
def test_parse_answer_reads_native_formats(text, fmt, coords, points, convention):
    r = parse_answer(text, PW, PH, 5, fmt, coords)
    assert r.error is None and r.points == points
    assert convention is None or r.convention == convention


@pytest.mark.parametrize(
    "text, fmt, why",
    [
        ("The car fits at [120, 340] on the road.", "auto", "not valid JSON"),  # prose with numbers: no guess
        ('Sure! ```json\n[{"point_2d": [1, 2]}]\n```', "auto", "not valid JSON"),
        ("point_2d: [12, 30]", "qwen", "not valid JSON"),
        ('[{"point_2d": [1, 2]}, {"point": [1, 2]}]', "auto", "mix the gemini and qwen formats"),
        ('[{"point_2d": [1, 2, 3]}]', "auto", "expected 2 numbers"),
        ('[{"bbox_2d": [1, 2]}]', "auto", "expected 4 numbers"),
        ('[{"point_2d": [1, "2"]}]', "auto", "expected 2 numbers"),
        ('[{"label": "car"}]', "auto", "expected exactly one of"),
        ('[{"point_2d": [1, 2], "point": [1, 2]}]', "auto", "expected exactly one of"),
        (GEMINI_POINTS, "qwen", "in the gemini format"),
        (QWEN_POINTS, "segaug", "in the qwen format"),
        ("[[1, 2], [3]]", "auto", "expected an object"),
        ('"here"', "auto", "expected an object or a list"),
    ],
)
def test_parse_answer_rejects(text, fmt, why):
    r = parse_answer(text, PW, PH, 5, fmt)
    assert r.points == [] and r.error.startswith("parse error: ") and why in r.error


def test_parse_answer_drops_points_outside_and_uses_the_resized_size_given():
    r = parse_answer(
        '[{"point_2d": [700, 10]}, {"point_2d": [-1, 10]}, {"point_2d": [10, 10]}]',
        PW,
        PH,
        5,
        "qwen",
        resized=(320, 240),
    )
    assert r.points == [(20, 20)] and r.dropped_outside == 2 and r.convention.endswith("320x240")
    g = parse_answer('[{"point": [1001, 10]}, {"point": [10, 10]}]', PW, PH, 5)
    assert g.points == [(6, 4)] and g.dropped_outside == 1


# ------------------------------------------------------------------------------ thesis table label


def test_thesis_rows_label_the_vlm_row_with_the_share_the_vlm_placed(tmp_path):
    from segaug.report.thesis import thesis_rows, vlm_placed_label

    for seed, (acc, fb) in enumerate([(3, 7), (1, 9)]):
        d = tmp_path / f"seed{seed}"
        d.mkdir()
        (d / "summary.json").write_text(json.dumps({"placer_stats": {"vlm_accepted": acc, "fallback": fb}}))
    label = vlm_placed_label([tmp_path / "seed0", tmp_path / "seed1"])
    assert label == "20% (4 of 20 objects)"
    runs = [
        {"trainset": ts, "loss": "ce", "seed": 0, "classes": ["car"], "iou": {"car": 50.0}, "miou": 50.0}
        for ts in ("origin", "paste-vlm")
    ]
    specs = [
        {"name": "baseline", "trainset": "origin", "loss": "ce"},
        {"name": "VLM paste", "trainset": "paste-vlm", "loss": "ce"},
    ]
    rows = thesis_rows(specs, runs, {"paste-vlm": label})
    assert [r["vlm_placed"] for r in rows] == ["", label]
    assert "vlm_placed" not in thesis_rows(specs, runs)[0]
    with pytest.raises(SegaugError, match="not the summary of a VLM pasted set"):
        vlm_placed_label([tmp_path])


# ------------------------------------------------------------------------------ the config section


def test_vlm_config_reaches_the_provider_and_client(tmp_path):
    from segaug.paste.placers import vlm_client

    base = {
        "provider": "openai",
        "model": "m",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key_env": None,
        "cache_dir": str(tmp_path),
    }
    c = vlm_client({**base, "max_tokens": 4096, "min_pixels": 256 * 28 * 28, "max_pixels": 1280 * 28 * 28})
    p = c.provider
    assert p.max_tokens == 4096 and p.structured and c.answer_format == "auto" and c.coordinates is None
    assert p.params == {"temperature": 0.0, "max_tokens": 4096, "response_format": "json_schema"}
    assert p.resized_size(1920, 1080) == (1316, 728)  # within max_pixels 1280 * 28 * 28
    q = vlm_client({**base, "answer_format": "qwen", "coordinates": "norm1000"})
    assert not q.provider.structured and q.answer_format == "qwen" and q.coordinates == "norm1000"
    with pytest.raises(SegaugError, match="vlm.structured: true asks for our answer schema"):
        vlm_client({**base, "answer_format": "gemini", "structured": True})
    with pytest.raises(SegaugError, match="vlm.answer_format: 'llava'"):
        vlm_client({**base, "answer_format": "llava"})
    with pytest.raises(SegaugError, match="unknown key"):
        vlm_client({**base, "max_tokenz": 5})
