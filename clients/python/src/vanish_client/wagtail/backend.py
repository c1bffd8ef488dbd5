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
sites this backend purges), ``MATCH`` and ``HOSTS`` (below). ``LOCATION`` is accepted as an
alias of ``ADMIN_URL``. Purges are deferred to the commit and failures logged (or raised) as
``VANISH`` configures. In embedded mode (``VANISH['MODE'] = 'embedded'``) pages are purged
from the embedded cache, and from a proxy too when ``ADMIN_URL`` is given.

**Hosts and ports.** Wagtail names a page by its ``Site``'s hostname and port (by default
``localhost:80``: ``http://localhost/page/``), while clients often reach the site on another
port (a proxy on ``:8080``) or name: a purge of that exact URL would match nothing. So by
default (``"MATCH": "path"``) a page is purged by its path on every host and port. To purge
only the hosts clients use, map each Wagtail site host to them::

    "HOSTS": {"localhost": ["localhost:8080", "www.example.com"]}

(keys as Wagtail's URLs name the host, with ``:port`` when not 80/443, or without a port
for any). ``"MATCH": "url"`` purges exactly the URLs Wagtail gives. A purge that matches
nothing is logged at debug level with its selectors.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from wagtail.contrib.frontend_cache.backends.base import BaseBackend

from ..client import VanishClient
from ..errors import SelectorError
from ..selectors import Selector
from ..django.conf import get_settings
from ..django.dispatch import purge

_KNOWN = {"BACKEND", "HOSTNAMES", "ADMIN_URL", "LOCATION", "TOKEN", "TIMEOUT", "RETRIES",
          "ANY_QUERY", "SOFT", "MATCH", "HOSTS"}


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
        location = params.get("ADMIN_URL") or params.get("LOCATION")
        self.client: Optional[VanishClient] = None
        if location or conf.purges_proxy:
            try:
                self.client = VanishClient(
                    location or conf.admin_url,
                    token=params.get("TOKEN", conf.token),
                    timeout=float(params.get("TIMEOUT", conf.timeout)),
                    retries=int(params.get("RETRIES", conf.retries)),
                    backoff=conf.backoff,
                )
            except SelectorError as e:
                raise ImproperlyConfigured(f"VanishBackend: {e}") from e
        self.embedded = conf.embedded
        self.any_query = bool(params.get("ANY_QUERY", True))
        self.soft = bool(params.get("SOFT", False))
        self.match = params.get("MATCH", "path")
        if self.match not in ("path", "url"):
            raise ImproperlyConfigured(
                f"VanishBackend: MATCH must be 'path' or 'url', not {self.match!r}")
        hosts = params.get("HOSTS") or {}
        if not isinstance(hosts, Mapping) or not all(
                isinstance(v, (list, tuple)) and all(isinstance(h, str) for h in v)
                for v in hosts.values()):
            raise ImproperlyConfigured(
                "VanishBackend: HOSTS must map a site host to a list of hosts, e.g. "
                "{'localhost': ['localhost:8080']}")
        self.hosts = {str(k).lower(): list(v) for k, v in hosts.items()}

    def _mapped(self, netloc: str) -> Optional[List[str]]:
        """The hosts clients use for a Wagtail URL's host (``HOSTS``), if mapped."""
        netloc = netloc.lower()
        if netloc in self.hosts:
            return self.hosts[netloc]
        bare = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
        return self.hosts.get(bare)

    def selectors(self, urls: Iterable[str]) -> List[Selector]:
        """For each URL: ``url`` selectors on the hosts ``HOSTS`` maps its host to; else its
        path on every host and port (``MATCH = "path"``, the default) or the URL itself
        (``"url"``). Every query string of it with ``ANY_QUERY`` (unless it has one)."""
        out: List[Selector] = []
        for url in urls:
            parts = urlsplit(url)
            path = parts.path or "/"
            query = parts.query or None
            mapped = self._mapped(parts.netloc)
            if mapped is not None:
                candidates = [Selector.url(f"{parts.scheme or 'http'}://{h}{path}"
                                           + (f"?{query}" if query else "")) for h in mapped]
            elif self.match == "path":
                sel = Selector.path(path)
                candidates = [sel.query(query) if query else sel]
            else:
                candidates = [Selector.url(url)]
            for sel in candidates:
                if self.any_query and not query:
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
        return {"admin_url": self.client.config.admin_url if self.client else None,
                "embedded": self.embedded, "any_query": self.any_query, "soft": self.soft,
                "match": self.match, "hosts": self.hosts, "hostnames": self.hostnames}
