from django.urls import path

from project.urls import handler500
from project.urls import urlpatterns as project_urlpatterns
from tests import views

__all__ = ["handler500", "urlpatterns"]

urlpatterns = [
    *project_urlpatterns,
    path("test/enqueue/", views.enqueue),
    path("api/test/broken/", views.broken),
]
