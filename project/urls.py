from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from project import health, views
from workers.views import operator_page

handler500 = "project.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", views.password_change, name="password_change"),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password_reset/", views.password_reset, name="password_reset"),
    path(
        "accounts/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/jobs/", operator_page, name="operator"),
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
