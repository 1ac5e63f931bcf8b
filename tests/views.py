"""Test-only views: one enqueues one of tests/tasks.py for the logged-in user, one is a bug."""

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from tests import tasks
from workers.backends import enqueue_for


@login_required
@require_POST
def enqueue(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body)
    task = getattr(tasks, body["task"])
    if "time_limit" in body:
        task = task.using(time_limit=body["time_limit"])
    with enqueue_for(owner=request.user):
        result = task.enqueue(*body.get("args", []), **body.get("kwargs", {}))
    return JsonResponse({"job": int(result.id)}, status=202)


def broken(request: HttpRequest) -> JsonResponse:
    raise ZeroDivisionError("a secret detail of a bug")
