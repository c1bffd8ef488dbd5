from django.urls import path

from . import views

urlpatterns = [
    path("news", views.news_index),
    path("news/<slug:slug>", views.news_item),
    path("about", views.about),
    path("products/", views.product_list),
    path("products/<int:pk>/", views.product_detail),
    path("products/<int:pk>/rename", views.rename_product),
    path("plain/<int:pk>/", views.product_plain),
    path("notes/<int:pk>/", views.note_detail),
    path("cookie", views.sets_cookie),
    path("private", views.private_page),
    path("async", views.async_page),
    path("session", views.session_page),
    path("cp/<int:pk>", views.cached_item),
    path("cp-other/<int:pk>", views.cached_other_prefix),
    path("cp-async", views.cached_async),
    path("streamed", views.streamed),
    path("__purge__", views.purge_now),
]
