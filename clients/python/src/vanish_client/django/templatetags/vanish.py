"""``{% load vanish %}{% vanish_tags product "featured" %}``: tag the page being rendered.

Arguments may be tag strings, model instances, querysets or lists (see
:func:`vanish_client.django.tags.tags_for`). Needs the request in the context (``render()``
and ``TemplateResponse`` with the default context processors provide it); prints nothing.
"""

from typing import Any

from django import template

from ..tags import add_tags, logger

register = template.Library()


@register.simple_tag(takes_context=True)
def vanish_tags(context: Any, *items: Any) -> str:
    request = context.get("request") or getattr(context, "request", None)
    if request is None:
        logger.warning("vanish: {%% vanish_tags %%} needs 'request' in the template context; "
                       "tags %r dropped", items)
        return ""
    add_tags(request, *items)
    return ""
