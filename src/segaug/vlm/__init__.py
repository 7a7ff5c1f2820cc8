"""VLM-guided placement: ask a vision-language model where an object could be pasted.

The library part only (no Snakemake): build the prompt (:mod:`~segaug.vlm.prompt`), call a
provider (:mod:`~segaug.vlm.providers`: any OpenAI-compatible HTTP API - OpenAI, Gemini, vLLM -
or Qwen2.5-VL in-process), cache raw answers on disk (:mod:`~segaug.vlm.cache`), parse them
strictly (:mod:`~segaug.vlm.parse`), all tied together by
:class:`~segaug.vlm.client.VLMPlacementClient`, whose proposals never raise for service
failures: the caller falls back to rule-based placement. :mod:`~segaug.vlm.tiny` builds a tiny
random-weight Qwen2.5-VL for tests.

Typical use::

    provider = OpenAICompatibleProvider("https://api.openai.com/v1", "gpt-4o-mini")
    client = VLMPlacementClient(provider, ResponseCache("results/vlm_cache"), RequestBudget(500))
    proposal = client.propose(image, mask_rgb, legend, "car", (40, 22), surfaces=["road"])
    if proposal.points: ...   # centres (x, y), best first
    else: ...                 # fall back; proposal.error says why (None: the model found no place)
"""

from segaug.vlm.cache import ResponseCache, cache_key
from segaug.vlm.client import BudgetExhausted, Proposal, RequestBudget, VLMPlacementClient
from segaug.vlm.parse import ParseResult, parse_answer, parse_points, smart_resize
from segaug.vlm.prompt import build_messages, image_digest, prompt_text
from segaug.vlm.providers import LocalQwenProvider, OpenAICompatibleProvider, Provider, VLMError

__all__ = [
    "BudgetExhausted",
    "LocalQwenProvider",
    "OpenAICompatibleProvider",
    "ParseResult",
    "Proposal",
    "Provider",
    "RequestBudget",
    "ResponseCache",
    "VLMError",
    "VLMPlacementClient",
    "build_messages",
    "cache_key",
    "image_digest",
    "parse_answer",
    "parse_points",
    "prompt_text",
    "smart_resize",
]
