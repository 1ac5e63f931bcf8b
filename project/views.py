import sys

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from project.auth import USER_BACKEND
from project.outages import request_failed
from project.throttle import by_address, by_email, by_user, throttled
from wire import errors
from wire.errors import error_response
from wire.outage import OUTAGES, RETRY_AFTER, UNAVAILABLE_MESSAGE


def home(request: HttpRequest) -> HttpResponse:
    # The page refuses files over the limit before sending them; the API checks again.
    return render(
        request,
        "home.html",
        {
            "upload_max_bytes": settings.UPLOAD_MAX_BYTES,
            # On S3 the page sends files straight to the bucket (media_tasks/direct.py).
            "direct_uploads": settings.MEDIA_STORAGE == "s3",
        },
    )


@throttled(
    "signup",
    action="sign up",
    window="SIGNUP_WINDOW",
    limits=[(by_address, "SIGNUPS_PER_ADDRESS")],
)
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and log in with it."""
    if request.user.is_authenticated:
        return redirect("home")
    form: UserCreationForm[User] = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend=USER_BACKEND)
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


# Django's own views. The reset answers the same whether or not an account has the address.
password_reset = throttled(
    "password_reset",
    action="reset a password",
    window="PASSWORD_RESET_WINDOW",
    limits=[(by_address, "PASSWORD_RESETS_PER_ADDRESS"), (by_email, "PASSWORD_RESETS_PER_EMAIL")],
)(auth_views.PasswordResetView.as_view())

# Signed in, but the old password is asked for: limited so that a stolen session cannot
# guess it at leisure.
password_change = throttled(
    "password_change",
    action="change the password",
    window="PASSWORD_CHANGE_WINDOW",
    limits=[(by_user, "PASSWORD_CHANGES_PER_USER")],
)(auth_views.PasswordChangeView.as_view())


def server_error(request: HttpRequest) -> HttpResponse:
    """The site's `handler500`: 503 with Retry-After while a service it needs does not answer
    (OUTAGES), else 500; JSON for the API, a page otherwise. Called with the exception being
    handled; its details are in the log (django.request; an outage's once, project.outages),
    never in the answer."""
    error = sys.exc_info()[1]
    outage = isinstance(error, OUTAGES)
    status = 503 if outage else 500
    message = (
        UNAVAILABLE_MESSAGE
        if outage
        else "something went wrong on the server: it is logged, and it is not your fault"
    )
    response: HttpResponse
    if request.path.startswith("/api/"):
        code = errors.UNAVAILABLE if outage else errors.SERVER_ERROR
        response = error_response(code=code, error=message, status=status)
    else:
        response = HttpResponse(
            f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{message}</p>",
            status=status,
        )
    if outage:
        response["Retry-After"] = str(RETRY_AFTER)
        assert error is not None
        request_failed(error, response)
    return response
