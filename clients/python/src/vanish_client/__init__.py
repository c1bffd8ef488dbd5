"""Python client for Vanish's admin API: purge, explain, health.

::

    from vanish_client import VanishClient, Selector

    vanish = VanishClient("http://127.0.0.1:8081")
    vanish.purge(Selector.url("https://example.com/news?page=2"))
    vanish.purge(Selector.path("/news").any_query().header("accept-language", "fr"))
    vanish.purge(Selector.tag("post-42"), Selector.prefix("/blog/"), mode="soft")

``AsyncVanishClient`` has the same methods as coroutines. Django helpers live in
``vanish_client.django``; the Wagtail frontend-cache backend in ``vanish_client.wagtail``.
"""

from ._version import __version__
from .aio import AsyncBatch, AsyncVanishClient
from .client import Batch, VanishClient
from .errors import (
    EmbeddedCacheError, SelectorError, VanishAPIError, VanishConnectionError, VanishError, VanishTimeoutError,
)
from .results import BatchResult, Explanation, Health, PurgeResult, Variant
from .selectors import HARD, SOFT, Mode, Selector

__all__ = [
    "__version__",
    "AsyncBatch",
    "AsyncVanishClient",
    "Batch",
    "BatchResult",
    "EmbeddedCacheError",
    "Explanation",
    "HARD",
    "Health",
    "Mode",
    "PurgeResult",
    "SOFT",
    "Selector",
    "SelectorError",
    "Variant",
    "VanishAPIError",
    "VanishClient",
    "VanishConnectionError",
    "VanishError",
    "VanishTimeoutError",
]
