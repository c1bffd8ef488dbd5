"""A small Wagtail site: a home page listing its articles, and articles."""

from django.db import models
from wagtail.models import Page


class HomePage(Page):
    intro = models.CharField(max_length=255, blank=True)

    subpage_types = ["pages.ArticlePage"]

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        # A queryset in the context: VanishMiddleware tags the page with pages.articlepage.
        context["articles"] = ArticlePage.objects.child_of(self).live().order_by("pk")
        return context


class ArticlePage(Page):
    body = models.TextField(blank=True)

    parent_page_types = ["pages.HomePage"]
    content_panels = Page.content_panels + ["body"]
