from django.apps import AppConfig
from django.tasks.signals import task_finished, task_started


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        # A message's picture shows its upload's processing (chat/pictures.py).
        from chat import pictures

        task_started.connect(pictures.picture_job_moved, dispatch_uid="chat.picture_started")
        task_finished.connect(pictures.picture_job_moved, dispatch_uid="chat.picture_finished")
