from django.urls import path

from media_tasks import tus, views

urlpatterns = [
    path("api/uploads/", views.uploads, name="uploads"),
    path("api/uploads/<int:upload_id>/", views.upload_detail, name="upload-detail"),
    path("api/uploads/<int:upload_id>/original", views.upload_original, name="upload-original"),
    path("api/uploads/<int:upload_id>/cancel", views.upload_cancel, name="upload-cancel"),
    path("api/uploads/s3/", views.direct_upload_start, name="direct-upload-start"),
    path("api/uploads/s3/complete", views.direct_upload_complete, name="direct-upload-complete"),
    path("api/uploads/tus/", tus.tus_uploads, name="tus-uploads"),
    path("api/uploads/tus/<uuid:key>", tus.tus_upload, name="tus-upload"),
]
