"""The operators' page of the job runtime (its figures come live over /ws/operator/)."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@staff_member_required
def operator_page(request: HttpRequest) -> HttpResponse:
    can_change = request.user.has_perm("workers.change_job")
    return render(request, "workers/operator.html", {"can_change": can_change})
