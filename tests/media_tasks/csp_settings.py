"""The test settings under the strictest Content-Security-Policy the site may be served with:
the browser tests run the pages under it to show they need no inline code or styles."""

from django.utils.csp import CSP

from tests import settings
from tests.settings import *  # noqa: F403

CSP_MIDDLEWARE = "django.middleware.csp.ContentSecurityPolicyMiddleware"
if CSP_MIDDLEWARE not in settings.MIDDLEWARE:
    MIDDLEWARE = [*settings.MIDDLEWARE, CSP_MIDDLEWARE]
SECURE_CSP = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    # 'self' covers ws:// and wss:// to the same host (CSP Level 3).
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}
