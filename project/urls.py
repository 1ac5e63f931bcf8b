from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from project import health, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("chat/", include("chat.urls")),
    # No trailing slash: what probes and Prometheus expect (SECURE_REDIRECT_EXEMPT matches).
    path("healthz", health.healthz, name="healthz"),
    path("metrics", health.metrics, name="metrics"),
    path("", include("media_tasks.urls")),
]

if settings.DEBUG and settings.MEDIA_STORAGE == "local":
    # Development only: production serves media from nginx (see deploy/).
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
