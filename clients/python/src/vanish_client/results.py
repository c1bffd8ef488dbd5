"""Typed answers of the admin API. Each keeps the decoded JSON in ``raw`` for fields added later."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional


@dataclass(frozen=True)
class PurgeResult:
    """The answer to one purge (``POST /invalidate`` or ``PURGE``)."""

    id: str
    """The purge's id, as logged by Vanish."""
    matched: int
    """How many stored objects (variants) matched."""
    duration_us: int
    mode: str
    dry_run: bool
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, v: Mapping[str, Any]) -> "PurgeResult":
        return cls(
            id=str(v.get("id", "")),
            matched=int(v.get("matched", 0)),
            duration_us=int(v.get("duration_us", 0)),
            mode=str(v.get("mode", "hard")),
            dry_run=bool(v.get("dry_run", False)),
            raw=dict(v),
        )


@dataclass(frozen=True)
class BatchResult:
    """The answers to a batch, which may have been split into several requests."""

    results: List[PurgeResult]

    @property
    def matched(self) -> int:
        """Objects matched, summed over every request of the batch."""
        return sum(r.matched for r in self.results)

    @property
    def requests(self) -> int:
        """How many admin requests were sent."""
        return len(self.results)


@dataclass(frozen=True)
class Variant:
    """One stored variant of a resource, as ``/explain`` describes it."""

    id: Any
    selected: bool
    """True when a request with the explain call's headers would be served this variant."""
    status: int
    vary: Dict[str, Optional[str]]
    tags: List[str]
    age_s: int
    ttl_s: int
    state: str
    """``fresh``, ``stale`` or ``stale (soft-purged)``."""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, v: Mapping[str, Any]) -> "Variant":
        return cls(
            id=v.get("id"),
            selected=bool(v.get("selected", False)),
            status=int(v.get("status", 0)),
            vary=dict(v.get("vary") or {}),
            tags=list(v.get("tags") or []),
            age_s=int(v.get("age_s", 0)),
            ttl_s=int(v.get("ttl_s", 0)),
            state=str(v.get("state", "")),
            raw=dict(v),
        )


@dataclass(frozen=True)
class Explanation:
    """What the cache holds for one URL (``GET /explain``)."""

    key: str
    cached: bool
    variants: List[Variant]
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def selected(self) -> Optional[Variant]:
        """The variant a request with the given headers would be served, if any."""
        return next((v for v in self.variants if v.selected), None)

    @classmethod
    def from_json(cls, v: Mapping[str, Any]) -> "Explanation":
        return cls(
            key=str(v.get("key", "")),
            cached=bool(v.get("cached", False)),
            variants=[Variant.from_json(x) for x in v.get("variants") or []],
            raw=dict(v),
        )


@dataclass(frozen=True)
class Health:
    """``GET /healthz``: ``ok`` is True when the store is healthy."""

    status: str
    store: str
    objects: int
    bytes: int
    capacity: int
    problem: Optional[str]
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_json(cls, v: Mapping[str, Any]) -> "Health":
        return cls(
            status=str(v.get("status", "")),
            store=str(v.get("store", "")),
            objects=int(v.get("objects", 0)),
            bytes=int(v.get("bytes", 0)),
            capacity=int(v.get("capacity", 0)),
            problem=v.get("problem"),
            raw=dict(v),
        )
