from django.urls import path

from project.urls import urlpatterns as project_urlpatterns
from tests import views

urlpatterns = [
    *project_urlpatterns,
    path("test/enqueue/", views.enqueue),
]
