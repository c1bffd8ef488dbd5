"""Builds the test site's data: a Wagtail home page with two articles, served on Vanish's port."""

from __future__ import annotations

from django.conf import settings
from django.test.utils import override_settings


def build_site(proxy_port: int) -> dict:
    """Replaces Wagtail's welcome page with a HomePage and two ArticlePages (published), and
    makes 127.0.0.1:<proxy_port> the default site, so page URLs are Vanish's URLs."""
    from wagtail.models import Page, Site

    from pages.models import ArticlePage, HomePage

    # Nothing is running yet: purges triggered by publishing would fail.
    with override_settings(VANISH={**settings.VANISH, "ENABLED": False}):
        Site.objects.all().delete()
        root = Page.get_first_root_node()
        for child in root.get_children():
            child.delete()
        home = HomePage(title="Home", slug="home")
        root.add_child(instance=home)
        home.save_revision().publish()
        Site.objects.create(hostname="127.0.0.1", port=proxy_port, root_page=home,
                            is_default_site=True, site_name="test")
        articles = []
        for i in (1, 2):
            article = ArticlePage(title=f"Article {i}", slug=f"article-{i}",
                                  body=f"first version of {i}")
            home.add_child(instance=article)
            article.save_revision().publish()
            articles.append(article.pk)
    return {"home": home.pk, "articles": articles}
