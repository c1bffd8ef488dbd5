"""Exceptions raised by the Vanish clients.

Every exception derives from :class:`VanishError`, so ``except VanishError`` catches
everything the client raises on purpose:

* :class:`SelectorError` -- a selector or argument is invalid; raised before anything is sent.
* :class:`VanishAPIError` -- the admin API answered with an error status; carries the
  server's JSON error (``error`` and ``field``) and the HTTP status.
* :class:`VanishConnectionError` -- the admin API could not be reached, or did not answer in
  time (:class:`VanishTimeoutError`), after all retries.
* :class:`EmbeddedCacheError` -- the embedded cache (Django's embedded mode) failed: its
  store is unreachable, or the engine refused.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional


class VanishError(Exception):
    """Base class of every error raised by ``vanish_client``."""


class SelectorError(VanishError, ValueError):
    """A selector (or another argument) that the admin API would reject, caught early.

    ``field`` names the offending part, like the server's ``field``, when known.
    """

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        self.message = message
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class VanishAPIError(VanishError):
    """The admin API answered with a non-2xx status.

    Attributes:
        status: the HTTP status code (e.g. ``400``, ``401``, ``503``).
        error: the server's ``error`` message (or the raw body when it was not JSON).
        field: the server's ``field`` naming the faulty input (``selectors[0].path``), or None.
        body: the decoded JSON body (a dict), or None when the body was not JSON.
        method, path: the request that failed.
        attempts: how many attempts were made (more than one when 5xx answers were retried).
    """

    def __init__(
        self,
        status: int,
        error: str,
        field: Optional[str] = None,
        body: Optional[Mapping[str, Any]] = None,
        method: str = "",
        path: str = "",
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.error = error
        self.field = field
        self.body = dict(body) if body is not None else None
        self.method = method
        self.path = path
        self.attempts = attempts
        where = f" to {method} {path}" if method else ""
        detail = f"{field}: {error}" if field else error
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"Vanish admin API answered {status}{where}{tries}: {detail}")

    @property
    def retryable(self) -> bool:
        """True for server-side (5xx) errors, which the client retries."""
        return self.status >= 500


class VanishConnectionError(VanishError):
    """The admin API could not be reached (refused, reset, DNS, TLS...) after all retries."""

    def __init__(self, message: str, method: str = "", url: str = "", attempts: int = 1) -> None:
        self.method = method
        self.url = url
        self.attempts = attempts
        where = f" ({method} {url})" if method else ""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"cannot reach the Vanish admin API{where}{tries}: {message}")


class VanishTimeoutError(VanishConnectionError):
    """The admin API did not answer within the timeout (after all retries)."""


class EmbeddedCacheError(VanishError):
    """The embedded cache failed (its Redis store unreachable, the engine refusing).

    Pages are then served uncached and purges are not applied; raised only with
    ``VANISH['RAISE_ERRORS']`` for pages, always for direct calls."""
