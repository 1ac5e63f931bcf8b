"""A message's picture follows its upload's processing: Django's task signals, sent by the
job runtime when a job starts and when it finishes, reach `picture_job_moved`, which hands a
job of an upload's thumbnails or analysis to `services.picture_moved`.

Live progress in between is not stored: the rooms' hubs follow the upload's jobs' own groups
(chat/hub.py) and pass their `job.progress` events on as `chat.progress` frames.
"""

from __future__ import annotations

import logging
from typing import Any

from chat import services
from media_tasks.tasks import analyse_upload, make_renditions

logger = logging.getLogger(__name__)

# The tasks of an upload's processing; their first argument is the upload's id.
PICTURE_TASKS = frozenset({make_renditions.module_path, analyse_upload.module_path})


def picture_job_moved(sender: Any, task_result: Any, **kwargs: Any) -> None:
    """Receiver of `task_started` and `task_finished`: a job of an upload started or ended."""
    if task_result.task.module_path not in PICTURE_TASKS or not task_result.args:
        return
    services.picture_moved(upload_id=int(task_result.args[0]))
