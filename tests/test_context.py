"""Context-aware placement: surface rules (share, size modes) and the VLM placer with its
fallback, against a real loopback server speaking the OpenAI chat-completions format."""

import numpy as np
import pytest
from test_vlm import chat, points_json, provider, server  # noqa: F401  (the loopback server fixture)

from segaug.data.canonical import ClassTable
from segaug.errors import SegaugError
from segaug.openvocab.surfaces import surface_lookup
from segaug.paste.context import ContextPlacer, SurfaceContext, SurfaceRule, VLMPlacer, footprint_share, parse_rules
from segaug.paste.placement import Candidate
from segaug.vlm import ResponseCache, VLMPlacementClient

TABLE = ClassTable(("grass", "road", "car"), ((0, 128, 0), (128, 128, 128), (255, 0, 0)))
H, W = 60, 80


def scene(with_car=False):
    label = np.zeros((H, W), np.uint8)
    label[30:50] = 1  # a road band, rows 30-49
    if with_car:
        label[35:45, 5:25] = 2  # an existing car, 10 px high
    image = np.full((H, W, 3), 90, np.uint8)
    return image, label


def car(h=8, w=12, scale=1.0):
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 255
    return Candidate.make("crops/0.png", 2, "car", rgba, scale, False)


def context(**rule):
    rules = parse_rules({"car": {"surfaces": ["road"], "min_share": 0.9, **rule}})
    ctx = SurfaceContext(rules, TABLE.names, surface_lookup(TABLE, ["road"]))
    return ctx


def test_rule_based_placements_stand_on_the_surface():
    image, label = scene()
    placer = ContextPlacer(context())
    placer.set_image("a", image, label)
    road = label == 1
    for k in range(30):
        pl = placer.place(np.random.default_rng(k), image, label, car())
        assert pl is not None and pl.reason.startswith("surface: road ")
        mask = np.ones((pl.height, pl.width), bool)
        assert footprint_share(road, mask, pl.x, pl.y) >= 0.9
    placer.set_image("b", image, np.zeros_like(label))  # no road at all
    assert placer.place(np.random.default_rng(0), image, label, car()) is None


def test_size_modes():
    image, label = scene(with_car=True)
    placer = ContextPlacer(context(size="same_class"))
    placer.set_image("a", image, label)
    pl = placer.place(np.random.default_rng(0), image, label, car(h=20, w=30))
    assert pl.height == 10  # the median height of the cars already there
    placer = ContextPlacer(context(size="surface", surface_fraction=0.25, min_share=0.5))
    placer.set_image("a", image, label)
    pl = placer.place(np.random.default_rng(0), image, label, car(h=20, w=40))
    assert max(pl.width, pl.height) <= 0.25 * W + 1  # road region extent = 80 px


def test_bad_rules_are_clear_errors():
    with pytest.raises(SegaugError, match="context.rules.car.size"):
        parse_rules({"car": {"surfaces": ["road"], "size": "huge"}})
    with pytest.raises(SegaugError, match="context.rules.car.surfaces"):
        parse_rules({"car": {"surfaces": []}})
    with pytest.raises(SegaugError, match="unknown class"):
        SurfaceContext({"bus": SurfaceRule(("road",))}, TABLE.names, surface_lookup(TABLE, ["road"]))
    placer = ContextPlacer(context())
    image, label = scene()
    placer.set_image("a", image, label)
    boat = Candidate.make("crops/1.png", 0, "grass", car().base_rgba, 1.0, False)
    with pytest.raises(SegaugError, match="no surface rule for class 'grass'"):
        placer.place(np.random.default_rng(0), image, label, boat)


def vlm_placer(server, tmp_path):  # noqa: F811
    client = VLMPlacementClient(provider(server), cache=ResponseCache(tmp_path / "cache"), n_points=3)
    legend = {n: tuple(c) for n, c in zip(TABLE.names, TABLE.palette)}
    return VLMPlacer(context(), client, legend, TABLE.colorize)


def test_vlm_point_on_the_road_is_taken(server, tmp_path):  # noqa: F811
    server.reply = lambda n, req: chat(points_json((40, 5), (40, 40)))  # grass first, then road
    placer = vlm_placer(server, tmp_path)
    image, label = scene()
    placer.set_image("a", image, label)
    pl = placer.place(np.random.default_rng(0), image, label, car())
    assert pl.reason.startswith("vlm: road")
    assert (pl.x + pl.width // 2, pl.y + pl.height // 2) == (40, 40)
    assert placer.stats["vlm_accepted"] == 1 and placer.stats["requests"] == 1
    # the same question again: answered from the cache, no request
    placer.place(np.random.default_rng(0), image, label, car())
    assert server.count == 1 and placer.stats["cache_hits"] == 1


@pytest.mark.parametrize(
    "content,why",
    [
        (points_json((40, 5)), "no valid point"),  # on grass: fails the surface rule
        (points_json((500, 40)), "no point"),  # outside the image: dropped
        ("here you go: (40, 40)", "parse error"),  # not the JSON schema
    ],
)
def test_vlm_fallback_is_recorded(server, tmp_path, content, why):  # noqa: F811
    server.reply = lambda n, req: chat(content)
    placer = vlm_placer(server, tmp_path)
    image, label = scene()
    placer.set_image("a", image, label)
    pl = placer.place(np.random.default_rng(0), image, label, car())
    assert pl.reason.startswith(f"fallback (vlm: {why}): surface: road")
    assert placer.stats["fallback"] == 1 and placer.stats["fallback_reasons"] == {why: 1}


def test_context_and_vlm_paste_same_seed_same_bytes(server, tmp_path):  # noqa: F811
    """A whole pasted set with surface rules (and through the VLM, answered from a loopback
    server) is the same bytes for the same seed, and another for another seed."""
    from test_paste import TABLE as T
    from test_paste import files_bytes, make_dataset

    from segaug.paste.pipeline import paste_dataset
    from segaug.pool import build_pool, load_pool

    ids = make_dataset(tmp_path / "data")
    build_pool(tmp_path / "data", ids, T, ["car"], 0.05, 10, False, tmp_path / "pool")
    pool = load_pool(tmp_path / "pool")
    rules = parse_rules({"car": {"surfaces": ["road", "background"], "min_share": 0.5}})

    def ctx():
        return SurfaceContext(rules, T.names, surface_lookup(T, ["road", "background"]))

    server.reply = lambda n, req: chat(points_json((25, 20), (10, 10)))
    legend = {n: tuple(c) for n, c in zip(T.names, T.palette)}
    outs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        placers = {
            "context": ContextPlacer(ctx()),
            "vlm": VLMPlacer(
                ctx(), VLMPlacementClient(provider(server), ResponseCache(tmp_path / "cache")), legend, T.colorize
            ),
        }
        for method, placer in placers.items():
            out = tmp_path / f"{method}_{name}"
            paste_dataset(tmp_path / "data", ids, pool, placer, seed, out, objects_per_image=(1, 2))
            outs[method, name] = files_bytes(out)
    for method in ("context", "vlm"):
        # summary.json of the second VLM run says its answers came from the cache: compare the rest
        same = {k: v for k, v in outs[method, "a"].items() if k != "summary.json"}
        assert same == {k: v for k, v in outs[method, "b"].items() if k != "summary.json"}
        assert outs[method, "a"] != outs[method, "c"]
    import json

    second = json.loads(outs["vlm", "b"]["summary.json"])["placer_stats"]
    assert second["requests"] == 0 and second["cache_hits"] > 0


def test_vlm_native_answer_is_placed_and_its_convention_recorded(server, tmp_path):  # noqa: F811
    """Qwen2.5-VL answers in pixels of its resized image: 80x60 is seen as 84x56 (smart_resize)."""
    server.reply = lambda n, req: chat('```json\n[{"point_2d": [42, 42], "label": "car"}]\n```')
    placer = vlm_placer(server, tmp_path)
    image, label = scene()
    placer.set_image("a", image, label)
    pl = placer.place(np.random.default_rng(0), image, label, car())
    assert pl.reason.startswith("vlm: road") and (pl.x + pl.width // 2, pl.y + pl.height // 2) == (40, 45)
    assert pl.vlm_answer == "qwen point_2d resized_pixels 84x56"
    assert placer.stats["answer_conventions"] == {"qwen point_2d resized_pixels 84x56": 1}


def test_vlm_fallback_reason_carries_the_http_status(server, tmp_path):  # noqa: F811
    from test_vlm import status

    server.reply = lambda n, req: chat(points_json((40, 40))) if n == 1 else status(404)
    placer = vlm_placer(server, tmp_path)
    for k, with_car in enumerate((False, True)):
        image, label = scene(with_car)
        placer.set_image(str(k), image, label)
        pl = placer.place(np.random.default_rng(0), image, label, car())
    assert pl.reason.startswith("fallback (vlm: HTTP 404): surface: road")
    assert placer.stats["fallback_reasons"] == {"HTTP 404": 1} and placer.stats["vlm_accepted"] == 1


def test_too_few_vlm_placements_fail_unless_allowed(server, tmp_path):  # noqa: F811
    server.reply = lambda n, req: chat("The car could go at (40, 40).")
    placer = vlm_placer(server, tmp_path)
    placer.min_vlm_share, placer.allow_all_fallback = 0.2, False
    image, label = scene()
    placer.set_image("a", image, label)
    for k in range(3):
        placer.place(np.random.default_rng(k), image, label, car())
    with pytest.raises(
        SegaugError,
        match=r"the VLM placed 0 of 3 objects \(0%\), below vlm.min_vlm_share 20%.*"
        r"parse error x3.*allow_all_fallback: true",
    ) as exc:
        placer.finish()
    assert "\n" not in str(exc.value)
    placer.allow_all_fallback = True
    placer.finish()
    assert placer.stats["vlm_share"] == 0.0
