"""Django integration for Vanish: purge helpers, cache headers, model signals.

Add ``"vanish_client.django"`` to ``INSTALLED_APPS``, ``"vanish_client.django.VanishMiddleware"``
first in ``MIDDLEWARE``, and configure::

    VANISH = {"ADMIN_URL": "http://127.0.0.1:8081", "TOKEN": None, "SITE": "https://example.com"}

Or cache pages inside Django, through Vanish's engine (the ``vanish`` wheel)::

    VANISH = {"MODE": "embedded", "STORE": "memory"}        # or "redis://127.0.0.1:6379/0"

    from vanish_client.django import cache_page              # Django's, with tags=
    @cache_page(600, tags=["news"])
    def news(request): ...

Then::

    from vanish_client.django import invalidate_url, invalidate_path, invalidate_tags

    invalidate_url("/news?page=2")                                  # one URL, every variant
    invalidate_path("/news", any_query=True, headers={"accept-language": "fr"})
    invalidate_tags("news")                                         # a group of pages
"""

from .caching import CacheSpec, VanishMiddleware, cache_tags
from .conf import VanishSettings, get_client, get_settings
from .dispatch import PendingBatch, batch, purge
from .helpers import (
    invalidate_all, invalidate_path, invalidate_prefix, invalidate_tags, invalidate_url,
)
from .models import VanishPurgeMixin, register_purge, selectors_for
from .pagecache import (
    CacheMiddleware, FetchFromCacheMiddleware, UpdateCacheMiddleware, cache_page,
)
from .tags import add_tags, instance_tag, model_tag, model_tags, tags_for

vanish_batch = batch

__all__ = [
    "CacheMiddleware",
    "CacheSpec",
    "FetchFromCacheMiddleware",
    "UpdateCacheMiddleware",
    "cache_page",
    "PendingBatch",
    "VanishMiddleware",
    "VanishPurgeMixin",
    "VanishSettings",
    "add_tags",
    "batch",
    "cache_tags",
    "get_client",
    "get_settings",
    "instance_tag",
    "invalidate_all",
    "invalidate_path",
    "invalidate_prefix",
    "invalidate_tags",
    "invalidate_url",
    "model_tag",
    "model_tags",
    "purge",
    "register_purge",
    "selectors_for",
    "tags_for",
    "vanish_batch",
]
