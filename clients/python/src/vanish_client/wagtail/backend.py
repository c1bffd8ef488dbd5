"""The ``wagtail.contrib.frontend_cache`` backend for Vanish.

::

    WAGTAILFRONTENDCACHE = {
        "vanish": {
            "BACKEND": "vanish_client.wagtail.VanishBackend",
            "ADMIN_URL": "http://127.0.0.1:8081",   # default: VANISH["ADMIN_URL"]
            "TOKEN": None,                          # default: VANISH["TOKEN"]
            "TIMEOUT": 5,                           # seconds per attempt
        },
    }

Optional keys: ``RETRIES``, ``ANY_QUERY`` (also purge every query string of each page URL,
default True), ``SOFT`` (mark stale instead of removing), ``HOSTNAMES`` (Wagtail's own: which
sites this backend purges). ``LOCATION`` is accepted as an alias of ``ADMIN_URL``.
Purges are deferred to the commit and failures logged (or raised) as ``VANISH`` configures.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping

from django.core.exceptions import ImproperlyConfigured
from wagtail.contrib.frontend_cache.backends.base import BaseBackend

from ..client import VanishClient
from ..errors import SelectorError
from ..selectors import Selector
from ..django.conf import get_settings
from ..django.dispatch import purge

_KNOWN = {"BACKEND", "HOSTNAMES", "ADMIN_URL", "LOCATION", "TOKEN", "TIMEOUT", "RETRIES",
          "ANY_QUERY", "SOFT"}


class VanishBackend(BaseBackend):
    """Purges Wagtail pages from Vanish, one admin request per batch of URLs."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        params = dict(params)
        unknown = sorted(set(params) - _KNOWN)
        if unknown:
            raise ImproperlyConfigured(
                f"VanishBackend: unknown option(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_KNOWN - {'BACKEND'}))})")
        super().__init__(params)
        conf = get_settings()
        try:
            self.client = VanishClient(
                params.get("ADMIN_URL") or params.get("LOCATION") or conf.admin_url,
                token=params.get("TOKEN", conf.token),
                timeout=float(params.get("TIMEOUT", conf.timeout)),
                retries=int(params.get("RETRIES", conf.retries)),
                backoff=conf.backoff,
            )
        except SelectorError as e:
            raise ImproperlyConfigured(f"VanishBackend: {e}") from e
        self.any_query = bool(params.get("ANY_QUERY", True))
        self.soft = bool(params.get("SOFT", False))

    def selectors(self, urls: Iterable[str]) -> List[Selector]:
        """One ``url`` selector per URL (every query string of it with ``ANY_QUERY``)."""
        out: List[Selector] = []
        for url in urls:
            sel = Selector.url(url)
            if self.any_query and "?" not in url:
                sel = sel.any_query()
            if sel not in out:
                out.append(sel)
        return out

    def purge(self, url: str) -> None:
        """Purges one URL (every variant)."""
        self.purge_batch([url])

    def purge_batch(self, urls: Iterable[str]) -> None:
        """Purges every URL in one admin request."""
        selectors = self.selectors(urls)
        if selectors:
            purge(*selectors, soft=self.soft, client=self.client)

    def describe(self) -> Dict[str, Any]:
        """Where this backend sends purges (for logs and checks)."""
        return {"admin_url": self.client.config.admin_url, "any_query": self.any_query,
                "soft": self.soft, "hostnames": self.hostnames}
