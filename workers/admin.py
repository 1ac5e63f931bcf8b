from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from workers.models import Job
from workers.services import job_cancel, job_retry


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "id",
        "task_path",
        "channel",
        "owner",
        "status",
        "progress",
        "attempts",
        "enqueued_at",
        "finished_at",
    ]
    list_filter = ["status", "channel", "task_path", ("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "task_path", "owner__username", "error"]
    list_select_related = ["owner"]
    readonly_fields = [field.name for field in Job._meta.fields]
    actions = ["retry", "cancel"]
    date_hierarchy = "enqueued_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # The list's actions (retry, cancel) need the change permission; a job's own page is
        # read-only, since saving it would write back what it read over a worker's change.
        return obj is None and super().has_change_permission(request)

    @admin.action(description="Run again (failed or cancelled jobs)")
    # Actions change jobs: offered to (and run for) staff with the change permission only,
    # never to those who may only view them.
    @admin.action(description="Run again (failed or cancelled jobs)", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        done = sum(job_retry(job=job) for job in queryset)
        self.message_user(request, f"{done} job(s) queued again.", messages.SUCCESS)

    @admin.action(description="Cancel (queued or running jobs)", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        done = sum(job_cancel(job=job) for job in queryset)
        self.message_user(request, f"{done} job(s) cancelled.", messages.SUCCESS)
