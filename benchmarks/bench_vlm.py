#!/usr/bin/env python
"""VLM client overhead: proposals/s through a loopback OpenAI-compatible server, and cache hits.

The server answers at once with a fixed valid answer (in our schema, or as Qwen2.5-VL or Gemini
answer: ``--format``), so the figures are the client's own cost per proposal (prompt with two
PNG data URIs, the ``openai`` client's request with ``response_format`` when ``--structured``,
HTTP round trip, parse, cache write), not a real model's latency. Then every proposal is
repeated to time cache hits.

    python benchmarks/bench_vlm.py [--size 512x384] [--proposals 100] [--format segaug|qwen|gemini] [--structured]
"""

import argparse
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from segaug.vlm import OpenAICompatibleProvider, ResponseCache, VLMPlacementClient
from segaug.vlm.prompt import build_messages

LEGEND = {"road": (128, 64, 128), "building": (70, 70, 70), "car": (0, 0, 142)}
CONTENT = {
    "segaug": '{"points": [{"x": 10, "y": 300}]}',
    "qwen": '```json\n[\n\t{"point_2d": [10, 300], "label": "car"}\n]\n```',
    "gemini": '```json\n[\n  {"point": [800, 20], "label": "car"}\n]\n```',
}
ANSWER = b""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


def scenes(n: int, w: int, h: int):
    """``n`` different (photo, mask) pairs: noise photos, building above road."""
    for i in range(n):
        rng = np.random.default_rng(i)
        mask = np.empty((h, w, 3), np.uint8)
        mask[: h // 2], mask[h // 2 :] = LEGEND["building"], LEGEND["road"]
        yield rng.integers(0, 256, (h, w, 3), dtype=np.uint8), mask


def run(client, pairs) -> float:
    t0 = time.perf_counter()
    for image, mask in pairs:
        prop = client.propose(image, mask, LEGEND, "car", (40, 22), surfaces=["road"])
        assert prop.error is None and prop.points, prop
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="512x384", help="image WxH")
    ap.add_argument("--proposals", type=int, default=100)
    ap.add_argument("--format", default="segaug", choices=sorted(CONTENT), help="how the server answers")
    ap.add_argument("--structured", action="store_true", help="send response_format (json_schema)")
    args = ap.parse_args()
    global ANSWER
    ANSWER = json.dumps({"choices": [{"message": {"content": CONTENT[args.format]}}]}).encode()
    w, h = (int(v) for v in args.size.split("x"))
    pairs = list(scenes(args.proposals, w, h))

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    provider = OpenAICompatibleProvider(url, "bench", api_key_env=None, timeout_s=10, structured=args.structured)
    try:
        t0 = time.perf_counter()
        for image, mask in pairs[:20]:
            build_messages(image, mask, LEGEND, "car", (40, 22), surfaces=["road"])
        prompt_ms = 1e3 * (time.perf_counter() - t0) / 20
        fmt = "auto"
        uncached = run(VLMPlacementClient(provider, answer_format=fmt), pairs)
        with tempfile.TemporaryDirectory() as tmp:
            client = VLMPlacementClient(provider, ResponseCache(Path(tmp)), answer_format=fmt)
            first = run(client, pairs)
            hits = run(client, pairs)
    finally:
        httpd.shutdown()
        httpd.server_close()
    n = len(pairs)
    print(
        f"{n} proposals on {w}x{h} images (loopback server, instant answers in the {args.format} format"
        f"{', structured outputs' if args.structured else ''}; openai client)"
    )
    print(f"prompt only (2 PNG data URIs): {prompt_ms:7.2f} ms/proposal")
    print(f"no cache:                       {n / uncached:7.1f} proposals/s ({1e3 * uncached / n:.2f} ms/proposal)")
    print(f"cache miss (request + write):   {n / first:7.1f} proposals/s ({1e3 * first / n:.2f} ms/proposal)")
    print(f"cache hit (no request):         {n / hits:7.1f} proposals/s ({1e3 * hits / n:.2f} ms/proposal)")


if __name__ == "__main__":
    main()
