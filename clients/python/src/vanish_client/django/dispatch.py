"""Sending purges from Django: deferred to ``transaction.on_commit``, batched, and never
breaking the request that triggered them (unless ``VANISH['RAISE_ERRORS']``).

Every helper of :mod:`vanish_client.django` ends up in :func:`purge`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from django.db import transaction

import json
import time

from .._core import DEFAULT_BATCH_SIZE, chunks
from ..client import VanishClient
from ..errors import SelectorError, VanishError
from ..results import PurgeResult
from ..selectors import HARD, SOFT, Mode, Selector, purge_body
from .conf import VanishSettings, get_client, get_settings

logger = logging.getLogger("vanish_client")


@dataclass
class PendingBatch:
    """Selectors collected by :func:`batch`, grouped by (mode, dry_run, database)."""

    groups: Dict[Tuple[Mode, bool, Optional[str]], List[Selector]] = field(default_factory=dict)
    results: List[PurgeResult] = field(default_factory=list)
    """Answers of the requests sent when the block ended (empty when they were deferred to a
    commit, failed, or nothing was added)."""

    def add(self, selectors: Sequence[Selector], mode: Mode, dry_run: bool,
            using: Optional[str]) -> None:
        group = self.groups.setdefault((mode, dry_run, using), [])
        group.extend(s for s in selectors if s not in group)

    @property
    def matched(self) -> int:
        return sum(r.matched for r in self.results)


_batch: contextvars.ContextVar[Optional[PendingBatch]] = contextvars.ContextVar(
    "vanish_batch", default=None)


@contextlib.contextmanager
def batch() -> Iterator[PendingBatch]:
    """Collects every purge made in the block into one admin request (per mode)::

        with vanish_batch():
            for product in changed:
                invalidate_tags(f"product-{product.pk}")
            invalidate_prefix("/catalogue/")

    The request is sent (or deferred to the commit, as usual) when the block ends; nothing is
    sent when it raises. Nested blocks join the outermost one.
    """
    outer = _batch.get()
    if outer is not None:
        yield outer
        return
    pending = PendingBatch()
    token = _batch.set(pending)
    try:
        yield pending
    finally:
        _batch.reset(token)
    for (mode, dry_run, using), selectors in pending.groups.items():
        result = purge(*selectors, soft=mode == SOFT, dry_run=dry_run, using=using)
        if result is not None:
            pending.results.append(result)


def purge(*selectors: Selector, soft: bool = False, dry_run: bool = False,
          using: Optional[str] = None,
          client: Optional[VanishClient] = None) -> Optional[PurgeResult]:
    """Purges the union of ``selectors``, the way every Django helper does.

    * Inside ``transaction.atomic()`` (of database ``using``) the request is sent when the
      transaction commits, and not at all if it rolls back; the call returns None.
    * Inside :func:`batch` it joins the batch and returns None.
    * Otherwise it is sent now and the :class:`~vanish_client.PurgeResult` is returned.

    In embedded mode (``VANISH['MODE'] = 'embedded'``) the purge runs on the embedded cache,
    and is also sent to a proxy's admin API when ``ADMIN_URL`` is set (or ``client`` given).

    When Vanish is unreachable or refuses the purge, the error is logged on the
    ``vanish_client`` logger and None is returned, unless ``VANISH['RAISE_ERRORS']`` is true.
    Invalid selectors always raise :class:`~vanish_client.SelectorError` at once.
    ``client`` replaces the one built from ``VANISH`` (the Wagtail backend passes its own).
    A purge that matches nothing is logged at debug level with its selectors (a host or port
    that differs from what clients send is the usual cause).
    """
    if not selectors:
        raise SelectorError("must not be empty: name at least one selector", "selectors")
    for s in selectors:
        if not isinstance(s, Selector):
            raise SelectorError(f"expected a Selector, got {type(s).__name__}", "selectors")
    conf = get_settings()
    mode: Mode = SOFT if soft else HARD
    if not conf.enabled:
        logger.debug("vanish: disabled; not purging %s", describe(selectors))
        return None
    pending = _batch.get()
    if pending is not None and client is None:
        pending.add(selectors, mode, dry_run, using)
        return None
    if client is None and conf.purges_proxy:
        client = get_client(conf)
    if conf.defer_to_commit and transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(
            lambda: send(client, selectors, mode, dry_run, conf), using=using)
        return None
    return send(client, selectors, mode, dry_run, conf)


def send(client: Optional[VanishClient], selectors: Sequence[Selector], mode: Mode,
         dry_run: bool, conf: VanishSettings) -> Optional[PurgeResult]:
    """Sends now, to the embedded cache (embedded mode) and to ``client`` (a proxy's admin
    API) when given; logs (or raises, with ``RAISE_ERRORS``) a failure. Splits huge purges.

    With both, the result's ``matched`` is the sum (they are different caches) and ``raw``
    has each one's answer."""
    results: List[PurgeResult] = []
    errors: List[VanishError] = []
    if conf.embedded:
        try:
            results.append(_send_embedded(selectors, mode, dry_run, conf))
        except VanishError as e:
            errors.append(e)
            logger.error("vanish: purge of %s in the embedded cache failed: %s",
                         describe(selectors), e)
    if client is not None:
        try:
            results.extend(client.purge(*c, mode=mode, dry_run=dry_run)
                           for c in chunks(list(selectors), DEFAULT_BATCH_SIZE))
        except VanishError as e:
            errors.append(e)
            logger.error("vanish: purge of %s failed: %s", describe(selectors), e)
    if errors and conf.raise_errors:
        raise errors[0]
    if not results:
        return None
    matched = sum(r.matched for r in results)
    logger.info("vanish: purged %s: %d matched", describe(selectors), matched)
    if matched == 0:
        logger.debug("vanish: purge matched nothing: %s (do the hosts and ports match those "
                     "clients send?)", json.dumps([s.to_json() for s in selectors]))
    if len(results) == 1:
        return results[0]
    return PurgeResult(
        id=",".join(r.id for r in results),
        matched=matched,
        duration_us=sum(r.duration_us for r in results),
        mode=mode,
        dry_run=dry_run,
        raw={"requests": [r.raw for r in results]},
    )


def _send_embedded(selectors: Sequence[Selector], mode: Mode, dry_run: bool,
                   conf: VanishSettings) -> PurgeResult:
    from .embedded import purge_json

    started = time.monotonic()
    matched = 0
    for c in chunks(list(selectors), DEFAULT_BATCH_SIZE):
        matched += purge_json(purge_body(c, mode, dry_run), conf)
    return PurgeResult(id="embedded", matched=matched,
                       duration_us=int((time.monotonic() - started) * 1e6), mode=mode,
                       dry_run=dry_run, raw={"embedded": True, "matched": matched})


def describe(selectors: Sequence[Selector], limit: int = 5) -> str:
    """A short, log-friendly list of selectors."""
    shown = ", ".join(str(s) for s in selectors[:limit])
    more = f" and {len(selectors) - limit} more" if len(selectors) > limit else ""
    return f"[{shown}{more}]"
