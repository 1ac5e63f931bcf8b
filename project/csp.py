"""The site's Content-Security-Policy: its pages need nothing but their own files and websocket.

The chat pages send it (chat/views.py), and the browser tests serve the upload page under it
(tests/media_tasks/csp_settings.py), so that neither can come to rely on inline code or styles.
"""

from django.utils.csp import CSP

SITE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    # data: for the site's empty favicon (base.html) and the gallery's tiny placeholders.
    "img-src": [CSP.SELF, "data:"],
    # 'self' covers ws:// and wss:// to the same host (CSP Level 3).
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}
