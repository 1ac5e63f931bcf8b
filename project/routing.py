"""Websocket routes and the consumers of the named channels, in one place."""

from typing import Any

from django.conf import settings
from django.urls import re_path

from chat.consumers import ChatConsumer
from media_tasks.consumers import JobsConsumer
from project.consumers import PingConsumer
from workers.consumers import JobWorkerConsumer
from workers.operator import OperatorConsumer

websocket_urlpatterns: list[Any] = [
    re_path(r"^ws/ping/$", PingConsumer.as_asgi()),
    re_path(r"^ws/jobs/$", JobsConsumer.as_asgi()),
    re_path(r"^ws/operator/$", OperatorConsumer.as_asgi()),
    # Any room segment reaches the consumer, which refuses a bad name with close code 4400.
    re_path(r"^ws/chat/(?P<room>[^/]*)/$", ChatConsumer.as_asgi()),
]

# Every named channel is served by the job runtime's worker consumer: a message on it only
# wakes a worker, which then claims the next ready job for that channel from the database.
channel_routes: dict[str, Any] = {
    channel: JobWorkerConsumer.as_asgi() for channel in settings.WORKER_CHANNELS
}
