"""Views behind Vanish: query strings, Vary: Accept-Language, tags from the view and from
rendered model instances."""

import itertools
import json
import os

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from vanish_client.django import add_tags, cache_page, cache_tags, invalidate_path, invalidate_tags

from .models import Note, Product

_renders = itertools.count(1)


def _text(request, what):
    lang = request.headers.get("Accept-Language", "-")
    return HttpResponse(f"{what} lang={lang} render={next(_renders)} pid={os.getpid()}\n",
                        content_type="text/plain")


@cache_tags("news")
@vary_on_headers("Accept-Language")
def news_index(request):
    """/news, /news?page=N: one page per query string and language."""
    return _text(request, f"news page={request.GET.get('page', '1')}")


@cache_tags("news", lambda request, slug: f"news-{slug}")
@vary_on_headers("Accept-Language")
def news_item(request, slug):
    """/news/<slug>: tagged news and news-<slug>."""
    return _text(request, f"news item {slug}")


def about(request):
    """Undecorated: cacheable through the middleware (VANISH['CACHE_PAGES'])."""
    return _text(request, "about")


@cache_tags(max_age=120)
def product_detail(request, pk):
    """A TemplateResponse: the rendered product tags the page (shop.product-<pk>)."""
    return TemplateResponse(request, "shop/product.html",
                            {"product": get_object_or_404(Product, pk=pk)})


@cache_tags(max_age=120, stale_while_revalidate=30)
def product_list(request):
    """A TemplateResponse rendering a queryset: tagged with the list tag shop.product."""
    return TemplateResponse(request, "shop/products.html",
                            {"products": Product.objects.order_by("pk")})


@cache_tags()
def product_plain(request, pk):
    """render() (no context on the response): the template tag {% vanish_tags %} tags it."""
    return render(request, "shop/product_plain.html",
                  {"product": get_object_or_404(Product, pk=pk)})


def note_detail(request, pk):
    """A registered (not mixed-in) model; tags added from the view with add_tags()."""
    note = get_object_or_404(Note, pk=pk)
    add_tags(request, f"note-{note.pk}")
    return _text(request, f"note {note.text}")


@cache_tags("cookie")
def sets_cookie(request):
    """Decorated, but sets a cookie: must not be made public."""
    response = _text(request, "cookie")
    response.set_cookie("flavour", "oat")
    return response


@never_cache
@cache_tags("private")
def private_page(request):
    """The view's own Cache-Control wins over the decorator."""
    return _text(request, "private")


@cache_tags("async-tag", max_age=60)
async def async_page(request):
    """An async view, decorated."""
    return HttpResponse("async\n", content_type="text/plain")


def session_page(request):
    """Touches the session and sets a value: the session cookie makes it uncacheable."""
    request.session["seen"] = True
    return _text(request, "session")


@csrf_exempt
@require_POST
def rename_product(request, pk):
    """A write: saving the product purges its pages (VanishPurgeMixin) on commit."""
    product = get_object_or_404(Product, pk=pk)
    product.name = request.POST["name"]
    product.save()
    return HttpResponse("renamed\n", content_type="text/plain")


@cache_page(60, tags=["cp", lambda request, pk: f"cp-{pk}"])
def cached_item(request, pk):
    """Django's cache_page, Vanish's drop-in (embedded mode), with tags."""
    return _text(request, f"cached item {pk}")


@cache_page(60, key_prefix="other")
def cached_other_prefix(request, pk):
    """The same drop-in under another key prefix."""
    return _text(request, f"cached other {pk}")


@cache_page(60)
async def cached_async(request):
    """An async view under the drop-in."""
    return _text(request, "cached async")


@cache_page(60)
def streamed(request):
    """A streamed response: passes uncached."""
    return StreamingHttpResponse((f"part {i} render={next(_renders)}\n" for i in range(3)),
                                 content_type="text/plain")


@csrf_exempt
@require_POST
def purge_now(request):
    """Purges through the helpers in this process (tag=, or path=): for multi-process tests."""
    if "tag" in request.POST:
        result = invalidate_tags(request.POST["tag"])
    else:
        result = invalidate_path(request.POST["path"], any_query=True)
    response = HttpResponse(json.dumps({"matched": result.matched if result else None,
                                        "pid": os.getpid()}), content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
