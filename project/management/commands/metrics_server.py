"""`manage.py metrics_server`: /metrics for a host that runs workers but no web server.

It answers what the web server's /metrics answers, under the same access rule, for every
process of this host that writes to PROMETHEUS_MULTIPROC_DIR: the workers' job durations
above all. A host that runs the web server needs none: its /metrics covers its workers.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections
from django.http import HttpResponse

from project.health import metrics

logger = logging.getLogger(__name__)


class QuietHandler(WSGIRequestHandler):
    # A scraper that stalls must not hold this one-request-at-a-time server for ever.
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        # Requests go to the log as the site's other lines do, not as wsgiref's to stderr.
        logger.debug("client=%s " + format, self.client_address[0], *args)


class IPv6Server(WSGIServer):
    address_family = socket.AF_INET6


def application(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """/metrics through the site's own view (access rule, format); nothing else."""
    # As Django's handler does around each request: the database connection this thread
    # keeps between scrapes is dropped once past its age, or broken.
    close_old_connections()
    try:
        request = WSGIRequest(environ)
        if request.path_info == "/metrics":
            response = metrics(request)
        else:
            response = HttpResponse("Not found: this server answers /metrics only.\n", status=404)
    except Exception:
        logger.exception("metrics scrape failed")
        response = HttpResponse("Metrics are unavailable; see the server's log.\n", status=500)
    finally:
        close_old_connections()
    if response.status_code != 200:
        response["Content-Type"] = "text/plain; charset=utf-8"
    start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
    return [response.content]


class Command(BaseCommand):
    help = (
        "Serves /metrics for this host's processes (PROMETHEUS_MULTIPROC_DIR) on --bind and "
        "--port, for a host that runs workers but no web server."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="0.0.0.0", help="Address to listen on.")  # noqa: S104
        parser.add_argument("--port", type=int, default=9464, help="Port to listen on.")

    def handle(self, *args: Any, bind: str, port: int, **options: Any) -> None:
        if not settings.PROMETHEUS_MULTIPROC_DIR:
            raise CommandError(
                "PROMETHEUS_MULTIPROC_DIR is not set: this server would report its own "
                "metrics only, none of the workers'. Set it to the directory they write to."
            )
        server = make_server(
            bind,
            port,
            application,
            server_class=IPv6Server if ":" in bind else WSGIServer,
            handler_class=QuietHandler,
        )

        def stop(signum: int, frame: FrameType | None) -> None:
            # shutdown() waits for serve_forever() to return: not from its own thread.
            threading.Thread(target=server.shutdown).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        logger.info(
            "serving /metrics on %s port %d for the processes writing to %s",
            bind,
            server.server_port,
            settings.PROMETHEUS_MULTIPROC_DIR,
        )
        try:
            server.serve_forever()
        finally:
            server.server_close()
        logger.info("metrics server stopped")
