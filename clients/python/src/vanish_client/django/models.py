"""Purge a model instance's pages when it is saved or deleted.

Either mix :class:`VanishPurgeMixin` into a model::

    class Product(VanishPurgeMixin, models.Model):
        ...
        def get_absolute_url(self):
            return f"/products/{self.pk}/"

or register a model you cannot change::

    register_purge(Author, urls=lambda a: [a.profile_url()], tags=lambda a: [f"author-{a.pk}"])

On ``post_save`` and ``post_delete`` the instance's URLs (every query string of each), its
tags (``shop.product-42`` by default) and its model's list tags (``shop.product``) are purged
in one admin request, deferred to the commit (see :mod:`vanish_client.django.dispatch`).
Selectors are computed when the signal fires, so a deleted row's URL is still known.
Fixture loading (``raw`` saves) and ``QuerySet.update()`` send no signal and purge nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Type

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.signals import post_delete, post_save

from ..errors import VanishAPIError, VanishConnectionError
from ..selectors import Selector
from .conf import get_settings
from .dispatch import purge
from .tags import instance_tag, model_tags

logger = logging.getLogger("vanish_client")


class VanishPurgeMixin:
    """Model mixin: purge this instance's pages on save and delete (override to customise)."""

    vanish_any_query: bool = True
    """Purge every query string of the instance's URLs (``/products/4/?ref=mail`` too)."""

    def get_vanish_urls(self) -> Iterable[str]:
        """URLs showing this instance; default: ``get_absolute_url()`` when the model has it."""
        get_url = getattr(self, "get_absolute_url", None)
        return [get_url()] if callable(get_url) else []

    def get_vanish_tags(self) -> Iterable[str]:
        """Tags of pages showing this instance (what rendering it adds to a page's tags)."""
        return [instance_tag(self)]

    def get_vanish_selectors(self) -> List[Selector]:
        """Everything purged when this instance changes."""
        return build_selectors(self, self.get_vanish_urls(), self.get_vanish_tags(),
                               self.vanish_any_query)


@dataclass(frozen=True)
class _Registration:
    urls: Optional[Callable[[Any], Iterable[str]]]
    tags: Optional[Callable[[Any], Iterable[str]]]
    any_query: bool


_registry: Dict[Type[models.Model], _Registration] = {}


def build_selectors(instance: models.Model, urls: Iterable[str], tags: Iterable[str],
                    any_query: bool = True) -> List[Selector]:
    """URL selectors (joined to ``VANISH['SITE']`` when relative), the instance's tags and its
    model's list tags."""
    conf = get_settings()
    out: List[Selector] = []
    for url in urls:
        if not url:
            continue
        sel = Selector.url(conf.absolute_url(url))
        if any_query and "?" not in url:
            sel = sel.any_query()
        out.append(sel)
    for tag in list(tags) + model_tags(type(instance)):
        sel = Selector.tag(tag)
        if sel not in out:
            out.append(sel)
    return out


def register_purge(model: Type[models.Model], *,
                   urls: Optional[Callable[[Any], Iterable[str]]] = None,
                   tags: Optional[Callable[[Any], Iterable[str]]] = None,
                   any_query: bool = True) -> None:
    """Purge ``model``'s instances on save and delete without changing the model.

    ``urls(instance)`` defaults to ``[instance.get_absolute_url()]`` when defined, ``tags``
    to the instance tag. Subclasses (multi-table inheritance) are covered too.
    """
    _registry[model] = _Registration(urls, tags, any_query)


def selectors_for(instance: models.Model) -> List[Selector]:
    """What changing ``instance`` purges ([] when neither mixed in nor registered)."""
    if isinstance(instance, VanishPurgeMixin):
        return instance.get_vanish_selectors()
    for model in type(instance).__mro__:
        reg = _registry.get(model)
        if reg is None:
            continue
        if reg.urls is not None:
            urls = list(reg.urls(instance))
        else:
            get_url = getattr(instance, "get_absolute_url", None)
            urls = [get_url()] if callable(get_url) else []
        tags = list(reg.tags(instance)) if reg.tags else [instance_tag(instance)]
        return build_selectors(instance, urls, tags, reg.any_query)
    return []


def _on_change(sender: Any, instance: models.Model, using: Optional[str] = None,
               raw: bool = False, **kwargs: Any) -> None:
    if raw or not isinstance(instance, models.Model):
        return
    try:
        selectors = selectors_for(instance)
        if selectors:
            purge(*selectors, using=using)
    except (VanishAPIError, VanishConnectionError):
        raise  # already logged by purge(), which raises them only under RAISE_ERRORS
    except (ValueError, LookupError, ImproperlyConfigured) as e:
        # A broken get_absolute_url() or SITE must not break a save unless asked to.
        logger.error("vanish: cannot purge %r after %s: %s", instance,
                     "delete" if kwargs.get("signal") is post_delete else "save", e)
        if get_settings().raise_errors:
            raise


def connect_signals() -> None:
    """Connects the save/delete receivers (done by the app's ``ready()``)."""
    post_save.connect(_on_change, dispatch_uid="vanish_client.post_save")
    post_delete.connect(_on_change, dispatch_uid="vanish_client.post_delete")
