"""The job admin's actions change jobs: staff who may only view jobs are not offered them, and
posting one anyway changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from workers.models import Job

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/workers/job/"


def staff(username: str, *codenames: str) -> Client:
    user = get_user_model().objects.create_user(username, password="unused-0", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def job(status: str) -> Job:
    return Job.objects.create(
        task_path="tests.tasks.trivial", channel="compute", status=status, time_limit=60
    )


@pytest.fixture
def jobs(empty_layer: None) -> tuple[Job, Job]:
    return job(Job.Status.FAILED), job(Job.Status.QUEUED)


def offered(page: Any) -> set[str]:
    form = page.context["action_form"]
    return set() if form is None else set(dict(form.fields["action"].choices))


def run_action(client: Client, action: str, *targets: Job) -> Any:
    return client.post(
        CHANGELIST,
        {"action": action, ACTION_CHECKBOX_NAME: [str(target.pk) for target in targets]},
        follow=True,
    )


def test_view_only_staff_are_not_offered_the_actions(jobs: tuple[Job, Job]) -> None:
    page = staff("viewer", "view_job").get(CHANGELIST)
    assert page.status_code == 200
    assert not {"retry", "cancel"} & offered(page)
    assert b"Run again" not in page.content


def test_view_only_staff_posting_an_action_change_nothing(jobs: tuple[Job, Job]) -> None:
    failed, queued = jobs
    viewer = staff("viewer", "view_job")
    run_action(viewer, "retry", failed)
    run_action(viewer, "cancel", queued)
    failed.refresh_from_db()
    queued.refresh_from_db()
    assert failed.status == Job.Status.FAILED
    assert queued.status == Job.Status.QUEUED


def test_staff_who_may_change_jobs_run_them(jobs: tuple[Job, Job]) -> None:
    failed, queued = jobs
    operator = staff("operator", "view_job", "change_job")
    assert {"retry", "cancel"} <= offered(operator.get(CHANGELIST))
    assert b"1 job(s) queued again" in run_action(operator, "retry", failed).content
    assert b"1 job(s) cancelled" in run_action(operator, "cancel", queued).content
    failed.refresh_from_db()
    queued.refresh_from_db()
    assert failed.status == Job.Status.QUEUED
    assert queued.status == Job.Status.CANCELLED
