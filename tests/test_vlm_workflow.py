"""VLM paste through the real workflow, against a loopback OpenAI-compatible server that answers
the way real models do (Qwen2.5-VL grounding, Gemini pointing, our schema) and with each fault
(429 + Retry-After, 500, timeout, 404, refused connection, malformed answers).

The server is a real HTTP server on 127.0.0.1 that reads the request as a model would: it decodes
the colour-coded mask sent as the second image, finds the surface the prompt names (``rgb(...) =
road``), takes the surface pixel deepest inside it and answers that point in the format the
test asks for (Qwen: pixels of the ``smart_resize``'d image; Gemini: ``[y, x]`` in 0-1000).
Each test runs ``snakemake`` on the VLM paste target of a small demo dataset (data and pool are
built once per module; ``--forcerun paste`` re-runs only the paste job with the test's ``vlm``
section) and checks how the job ends. Every fault also records the requests the server got and
the seconds the snakemake run took; run with ``-s`` to see the table.
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import time

import numpy as np
import pytest
from PIL import Image
from test_vlm import KEY_ENV, SECRET, Reply, chat, server, status  # noqa: F401  (the loopback server fixture)
from test_workflow import write_config

from conftest import run_snakemake

pytestmark = pytest.mark.workflow

TARGET = "results/demo/shapes/full/paste/vlm/seed0"
LOG = "results/demo/logs/paste/shapes/full/vlm/seed0.log"
SMALL = {
    "datasets.shapes.num_train": 8,
    "datasets.shapes.num_val": 4,
    "datasets.shapes.width": 128,
    "datasets.shapes.height": 96,
    "seeds": [0],
}
MEASURED: dict[str, dict] = {}


# ------------------------------------------------------------------------------ a model-like server


def _image(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def best_point(req: dict) -> tuple[int, int, int, int]:
    """(x, y, W, H): the pixel deepest inside the surface the prompt names, in the mask sent."""
    import cv2

    parts = req["body"]["messages"][1]["content"]
    mask = _image(parts[1]["image_url"]["url"])
    text = parts[2]["text"]
    surface = re.search(r"must stand on: ([\w ,]+)\.", text).group(1).split(", ")[0]
    rgb = tuple(int(v) for v in re.search(rf"rgb\((\d+), (\d+), (\d+)\) = {surface}\b", text).groups())
    inside = np.all(mask == np.array(rgb, np.uint8), axis=-1).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y), mask.shape[1], mask.shape[0]


def answer_in(fmt: str):
    """A reply function answering the best point in ``fmt``, as that model family writes it."""
    from segaug.vlm import smart_resize

    def reply(n, req):
        x, y, W, H = best_point(req)
        if fmt == "qwen":  # absolute pixels of the image as Qwen's processor resized it
            rh, rw = smart_resize(H, W)
            px, py = round((x + 0.5) * rw / W), round((y + 0.5) * rh / H)
            return chat(f'```json\n[\n\t{{"point_2d": [{px}, {py}], "label": "car"}}\n]\n```')
        if fmt == "qwen_box":
            rh, rw = smart_resize(H, W)
            px, py = round((x + 0.5) * rw / W), round((y + 0.5) * rh / H)
            return chat(
                f'```json\n[\n\t{{"bbox_2d": [{px - 4}, {py - 3}, {px + 4}, {py + 3}], "label": "car"}}\n]\n```'
            )
        if fmt == "gemini":  # [y, x] normalised to 0-1000
            ny, nx = round((y + 0.5) * 1000 / H), round((x + 0.5) * 1000 / W)
            return chat(f'```json\n[\n  {{"point": [{ny}, {nx}], "label": "car"}}\n]\n```')
        if fmt == "pairs":
            return chat(json.dumps({"points": [[x, y]]}))
        return chat(json.dumps({"points": [{"x": x, "y": y}]}))

    return reply


# ------------------------------------------------------------------------------ the workflow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A demo working directory whose dataset, split and pool are built once."""
    tmp = tmp_path_factory.mktemp("vlmflow")
    cfg = write_config(tmp, **SMALL)
    run_snakemake("results/demo/shapes/full/pool", "--cores", "1", "--configfile", str(cfg), cwd=tmp)
    return tmp


def run_vlm(workdir, monkeypatch, name: str, **vlm):
    """Run the VLM paste job with this ``vlm`` section; (CompletedProcess, seconds, summary or None)."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    section = {
        "provider": "openai",
        "model": f"served-{name}",
        "api_key_env": KEY_ENV,
        "n_points": 3,
        "timeout_s": 5,
        "max_retries": 2,
        "budget": 200,
        "cache_dir": f"results/demo/vlm_cache_{name}",
        **vlm,
    }
    cfg = write_config(workdir, **SMALL, vlm=section)
    t0 = time.perf_counter()
    p = run_snakemake(TARGET, "--cores", "1", "--configfile", str(cfg), "--forcerun", "paste", cwd=workdir, check=False)
    seconds = time.perf_counter() - t0
    out = workdir / TARGET
    summary = json.loads((out / "summary.json").read_text()) if p.returncode == 0 else None
    return p, seconds, summary


def job_log(workdir) -> str:
    return (workdir / LOG).read_text()


def error_line(workdir) -> str:
    lines = [line for line in job_log(workdir).splitlines() if line.startswith("error:") or "Error" in line[:20]]
    return lines[-1] if lines else job_log(workdir)[-2000:]


def no_secret_anywhere(workdir, p):
    texts = [p.stdout, p.stderr] + [
        f.read_text(errors="replace")
        for f in workdir.rglob("*")
        if f.is_file() and f.suffix in (".json", ".jsonl", ".log", ".txt", ".yaml")
    ]
    assert all(SECRET not in t for t in texts)


@pytest.mark.parametrize(
    "fmt, convention",
    [
        ("qwen", "qwen point_2d resized_pixels 140x84"),
        ("qwen_box", "qwen bbox_2d resized_pixels 140x84"),
        ("gemini", "gemini point norm1000"),
        ("pairs", "segaug points[[x,y]] pixels"),
        ("segaug", "segaug points[{x,y}] pixels"),
    ],
)
def test_native_formats_place_objects_by_the_vlm(workdir, monkeypatch, server, fmt, convention):  # noqa: F811
    server.reply = answer_in(fmt)
    p, seconds, summary = run_vlm(workdir, monkeypatch, fmt, base_url=server.url, structured=False)
    assert p.returncode == 0, job_log(workdir)
    stats = summary["placer_stats"]
    placed = stats["vlm_accepted"]
    assert placed > 0 and stats["vlm_share"] >= 0.5, stats
    assert set(stats["answer_conventions"]) == {convention}
    manifest = [json.loads(x) for x in (workdir / TARGET / "manifest.jsonl").read_text().splitlines()]
    vlm_rows = [m for m in manifest if m["reason"].startswith("vlm: ")]
    assert len(vlm_rows) == placed and all(m["vlm_answer"] == convention for m in vlm_rows)
    assert all(r["auth"] == f"Bearer {SECRET}" for r in server.requests)
    assert all(r["body"]["max_tokens"] == 256 and "response_format" not in r["body"] for r in server.requests)
    no_secret_anywhere(workdir, p)


def test_structured_outputs_rejected_then_placed(workdir, monkeypatch, server):  # noqa: F811
    good = answer_in("segaug")

    def reply(n, req):
        if "response_format" in req["body"]:
            return status(400, '{"error": {"message": "response_format json_schema is not supported"}}')
        return good(n, req)

    server.reply = reply
    p, seconds, summary = run_vlm(workdir, monkeypatch, "structured", base_url=server.url, max_tokens=2048)
    assert p.returncode == 0, job_log(workdir)
    assert [("response_format" in r["body"]) for r in server.requests[:2]] == [True, False]
    assert sum("response_format" in r["body"] for r in server.requests) == 1  # remembered for the job
    assert server.requests[0]["body"]["max_tokens"] == 2048
    assert job_log(workdir).count("does not take structured outputs") == 1
    assert summary["placer_stats"]["vlm_share"] >= 0.5


def measure(name, server_count, seconds, outcome):
    MEASURED[name] = {"requests": server_count, "seconds": round(seconds, 2), "outcome": outcome}


def test_429_with_retry_after_is_waited_out(workdir, monkeypatch, server):  # noqa: F811
    good = answer_in("qwen")
    server.reply = lambda n, req: status(429, Retry_After="1") if n <= 2 else good(n, req)
    p, seconds, summary = run_vlm(workdir, monkeypatch, "429", base_url=server.url, answer_format="qwen")
    assert p.returncode == 0, job_log(workdir)
    stats = summary["placer_stats"]
    assert stats["requests"] == server.count == stats["vlm_accepted"] + stats["fallback"] + 2
    assert "HTTP 429" in job_log(workdir)
    measure("429 + Retry-After: 1 (first 2 requests)", server.count, seconds, "placed by the VLM")


@pytest.mark.parametrize(
    "name, code, body, requests",
    [
        ("404 (wrong model name)", 404, "The model `served-x` does not exist.", 1),
        ("400 (model takes no images)", 400, "This model does not support image input.", 1),
        ("400 naming response_format, again without it", 400, "response_format is not supported", 2),
    ],
)
def test_4xx_stops_the_job_with_one_line(workdir, monkeypatch, server, name, code, body, requests):  # noqa: F811
    server.reply = lambda n, req: status(code, json.dumps({"error": {"message": body}}))
    p, seconds, _ = run_vlm(workdir, monkeypatch, f"e{code}", base_url=server.url)
    assert p.returncode != 0 and not (workdir / TARGET).exists()
    line = error_line(workdir)
    assert f"HTTP {code}" in line and server.url in line and f"'served-e{code}'" in line and body[:20] in line, line
    assert server.count == requests  # not retried; a 400 naming response_format is asked once more without it
    measure(name, server.count, seconds, "job fails: " + line)
    no_secret_anywhere(workdir, p)


def test_refused_connection_stops_the_job(workdir, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    p, seconds, _ = run_vlm(workdir, monkeypatch, "refused", base_url=url)
    assert p.returncode != 0
    line = error_line(workdir)
    assert "cannot reach the VLM endpoint" in line and url in line and "'served-refused'" in line, line
    measure("connection refused", 0, seconds, "job fails: " + line)


@pytest.mark.parametrize(
    "name, reply, why",
    [
        ("500", lambda n, req: status(500, '{"error": "overloaded"}', Retry_After="0.05"), "HTTP 500"),
        ("malformed body", lambda n, req: Reply(body=b"<html>bad gateway</html>"), "provider error"),
        ("prose answer", lambda n, req: chat("The car fits at (40, 60) on the road."), "parse error"),
    ],
)
def test_all_fallback_fails_the_job_with_share_and_reasons(workdir, monkeypatch, server, name, reply, why):  # noqa: F811
    server.reply = reply
    p, seconds, _ = run_vlm(workdir, monkeypatch, name.replace(" ", "_"), base_url=server.url, budget=30)
    assert p.returncode != 0 and not (workdir / TARGET).exists()
    line = error_line(workdir)
    assert "the VLM placed 0 of" in line and "(0%)" in line and why in line and "allow_all_fallback" in line, line
    measure(name, server.count, seconds, "job fails: " + line)
    no_secret_anywhere(workdir, p)


def test_timeouts_fall_back_and_the_job_fails(workdir, monkeypatch, server):  # noqa: F811
    server.reply = lambda n, req: Reply(body=chat('{"points": []}').body, delay_s=3)
    p, seconds, _ = run_vlm(
        workdir, monkeypatch, "timeout", base_url=server.url, timeout_s=0.5, max_retries=1, budget=4
    )
    assert p.returncode != 0
    line = error_line(workdir)
    assert "the VLM placed 0 of" in line and "timeout x2" in line, line
    assert server.count == 4
    measure("timeout (server 3 s, timeout_s 0.5, max_retries 1, budget 4)", server.count, seconds, "job fails: " + line)


def test_all_fallback_allowed_keeps_the_set(workdir, monkeypatch, server):  # noqa: F811
    server.reply = lambda n, req: chat("I think (40, 60).")
    p, seconds, summary = run_vlm(workdir, monkeypatch, "allowed", base_url=server.url, allow_all_fallback=True)
    assert p.returncode == 0, job_log(workdir)
    assert summary["placer_stats"]["vlm_share"] == 0 and set(summary["reasons"]) == {"fallback (vlm: parse error)"}


@pytest.fixture(scope="module", autouse=True)
def report_measurements():
    yield
    if MEASURED:
        print("\nVLM faults through the workflow (requests the server got, seconds of the snakemake run):")
        for name, m in MEASURED.items():
            print(f"  {name:60s} {m['requests']:4d} requests {m['seconds']:7.2f} s  {m['outcome']}")


def test_demo_local_tiny_qwen_needs_allow_all_fallback(workdir, monkeypatch):
    """The demo's tiny random Qwen2.5-VL (local provider) never answers usefully: its set is kept
    only because the demo config says allow_all_fallback; without it the job fails loudly."""
    import yaml

    from conftest import ROOT

    demo_vlm = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())["vlm"]
    assert demo_vlm["allow_all_fallback"] is True
    for allow in (False, True):
        cfg = write_config(workdir, **SMALL, vlm={**demo_vlm, "allow_all_fallback": allow})
        p = run_snakemake(
            TARGET, "--cores", "1", "--configfile", str(cfg), "--forcerun", "paste", cwd=workdir, check=False
        )
        if not allow:
            assert p.returncode != 0 and "the VLM placed 0 of" in error_line(workdir), job_log(workdir)[-2000:]
    assert p.returncode == 0, job_log(workdir)[-3000:]
    stats = json.loads((workdir / TARGET / "summary.json").read_text())["placer_stats"]
    assert stats["vlm_share"] == 0 and stats["fallback_reasons"] == {"parse error": stats["fallback"]}
