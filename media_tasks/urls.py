from django.urls import path

from media_tasks import views

urlpatterns = [
    path("api/uploads/", views.uploads, name="uploads"),
    path("api/uploads/<int:upload_id>/", views.upload_detail, name="upload-detail"),
    path("api/uploads/<int:upload_id>/original", views.upload_original, name="upload-original"),
    path("api/uploads/<int:upload_id>/cancel", views.upload_cancel, name="upload-cancel"),
]
