"""The test settings under the strictest Content-Security-Policy the site may be served with:
the browser tests run the pages under it to show they need no inline code or styles."""

from project.csp import SITE_CSP
from tests import settings
from tests.settings import *  # noqa: F403

CSP_MIDDLEWARE = "django.middleware.csp.ContentSecurityPolicyMiddleware"
if CSP_MIDDLEWARE not in settings.MIDDLEWARE:
    MIDDLEWARE = [*settings.MIDDLEWARE, CSP_MIDDLEWARE]
SECURE_CSP = SITE_CSP
