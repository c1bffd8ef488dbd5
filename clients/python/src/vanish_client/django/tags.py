"""Tag names for models and instances, and collecting a request's tags.

Naming (stable, so pages tagged when rendered are found when a model changes):

* an instance: ``<app_label>.<model>-<pk>`` of the root of its multi-table inheritance, so a
  Wagtail ``BlogPage`` 7 and the ``Page`` 7 it extends share ``wagtailcore.page-7``;
* a list of a model (a queryset rendered by a page): ``<app_label>.<model>``.

A saved or deleted instance purges its own tag plus the list tags of its model and of every
model it inherits from, so list pages see new, changed and deleted rows.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, List, Type
from urllib.parse import quote

from django.core.paginator import Page as PaginatorPage
from django.db import models
from django.http import HttpRequest

from ..selectors import Selector

logger = logging.getLogger("vanish_client")

REQUEST_ATTR = "_vanish_tags"


def _root_model(model: Type[models.Model]) -> Type[models.Model]:
    concrete = model._meta.concrete_model or model
    parents = concrete._meta.get_parent_list()
    return parents[-1] if parents else concrete


def instance_tag(obj: models.Model) -> str:
    """The tag of one instance, e.g. ``shop.product-42``."""
    if obj.pk is None:
        raise ValueError(f"{obj!r} has no primary key yet, so it has no tag")
    label = str(_root_model(type(obj))._meta.label_lower)
    return f"{label}-{quote(str(obj.pk), safe='')}"


def model_tag(model: Type[models.Model]) -> str:
    """The list tag of a model, e.g. ``shop.product``."""
    return str((model._meta.concrete_model or model)._meta.label_lower)


def model_tags(model: Type[models.Model]) -> List[str]:
    """List tags purged when an instance of ``model`` changes: its own and its parents'."""
    concrete = model._meta.concrete_model or model
    return [model_tag(concrete)] + [p._meta.label_lower for p in concrete._meta.get_parent_list()]


def tags_for(item: Any) -> List[str]:
    """The tags a rendered ``item`` gives its page.

    ``item`` may be a tag string, a model instance (its instance tag, or whatever its
    ``get_vanish_tags()`` returns), a queryset, model class, paginator page or list of
    instances (the list tag), or a list of tag strings.
    """
    if item is None:
        return []
    if isinstance(item, str):
        return [Selector.tag(item).value or ""]
    if isinstance(item, models.Model):
        if item.pk is None:
            return []
        getter = getattr(item, "get_vanish_tags", None)
        return list(getter()) if callable(getter) else [instance_tag(item)]
    if isinstance(item, type) and issubclass(item, models.Model):
        return [model_tag(item)]
    if isinstance(item, models.QuerySet):
        return [model_tag(item.model)]
    if isinstance(item, PaginatorPage):
        return tags_for(item.object_list)
    if isinstance(item, (list, tuple, set, frozenset)):
        # A rendered list may gain or lose rows: tag it with the list tag of each model in it
        # (purged whenever any instance of that model changes), not with instance tags.
        out: List[str] = []
        for x in item:
            ts = [model_tag(type(x))] if isinstance(x, models.Model) else tags_for(x)
            out.extend(t for t in ts if t not in out)
        return out
    raise TypeError(f"cannot derive cache tags from {type(item).__name__}: {item!r}")


def context_tags(context: Any) -> List[str]:
    """Tags of the model instances, querysets and paginator pages among a template context's
    top-level values (what a ``TemplateResponse`` rendered); anything else is ignored."""
    out: List[str] = []
    if not isinstance(context, dict):
        return out
    for value in context.values():
        if isinstance(value, (models.Model, models.QuerySet, PaginatorPage)) or (
            isinstance(value, (list, tuple)) and value and isinstance(value[0], models.Model)
        ):
            out.extend(t for t in tags_for(value) if t not in out)
    return out


def add_tags(request: HttpRequest, *items: Any) -> None:
    """Tags the response to ``request`` with ``items`` (strings, instances, querysets...).

    Call it from a view, or use ``{% vanish_tags obj %}`` in a template; the ``cache_tags``
    decorator or ``VanishMiddleware`` writes the header.
    """
    collected = request_tags(request)
    for item in items:
        for t in tags_for(item):
            if t not in collected:
                collected.append(t)


def request_tags(request: HttpRequest) -> List[str]:
    """The tags collected so far for ``request`` (a live list)."""
    tags = getattr(request, REQUEST_ATTR, None)
    if tags is None:
        tags = []
        setattr(request, REQUEST_ATTR, tags)
    return tags


def unique(tags: Iterable[str]) -> List[str]:
    """``tags`` without repeats, in order."""
    out: List[str] = []
    for t in tags:
        if t and t not in out:
            out.append(t)
    return out
