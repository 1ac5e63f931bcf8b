from django.apps import AppConfig


class MediaTasksConfig(AppConfig):
    name = "media_tasks"
    verbose_name = "Uploads"
