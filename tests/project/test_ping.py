"""The websocket path through the ASGI application: routing, origin check, session auth."""

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from project.asgi import application
from tests.clients import SAME_ORIGIN

pytestmark = pytest.mark.django_db(transaction=True)


async def test_ping_answers_with_the_echo() -> None:
    communicator = WebsocketCommunicator(
        application,
        "/ws/ping/",
        headers=[*SAME_ORIGIN],
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"n": 1})
    assert await communicator.receive_json_from() == {
        "type": "pong",
        "echo": {"n": 1},
        "user": None,
    }
    await communicator.send_to(text_data="not json")
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.disconnect()


async def test_a_foreign_origin_is_refused() -> None:
    communicator = WebsocketCommunicator(
        application, "/ws/ping/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_the_session_user_reaches_the_consumer(user: Any, password: str) -> None:
    from asgiref.sync import sync_to_async
    from django.test import Client

    client = Client()
    await sync_to_async(client.login)(username=user.username, password=password)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        "/ws/ping/",
        headers=[*SAME_ORIGIN, (b"cookie", cookie)],
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({})
    assert (await communicator.receive_json_from())["user"] == "alice"
    await communicator.disconnect()


def test_daphne_leaves_multipart_parsing_to_django() -> None:
    # Twisted's own parse of every upload doubled the upload response time (tests/bench).
    import inspect

    from daphne.http_protocol import WebRequest
    from twisted.web import http as twisted_http

    assert "parsePOSTFormSubmission" in inspect.signature(twisted_http.Request.__init__).parameters
    assert getattr(WebRequest, "_form_off", False)


def test_daphne_hands_request_bodies_to_django_in_large_chunks() -> None:
    # At daphne's 8 KiB, Django wrote each chunk of a large upload through a thread of its
    # own: most of daphne's CPU for a 15 MB upload (tests/bench/bench_security.py).
    from daphne.server import Server

    from project.server import REQUEST_BODY_CHUNK

    server = Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    assert server.request_buffer_size == REQUEST_BODY_CHUNK
