"""The upload page in a real browser: drop pictures, watch them upload and process, see the
gallery after a reload, delete one; and the live updates surviving a server restart."""

from __future__ import annotations

import base64
import mimetypes
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import Locator, Page, expect

from media_tasks.models import Upload
from tests.media_tasks import images
from tests.processes import Process, Processes, free_port, login, wait_for, wait_until_serving

if TYPE_CHECKING:
    # Imported by pytest_plugins below; importing it here first would stop pytest from
    # registering it as a plugin with assertion rewriting.
    from tests.browser import PageLog

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOT_AN_IMAGE = b"plain text that only pretends to be a JPEG\n"
# Chromium logs every 4xx answer to a page's request as a console error: this one is the point.
REJECTED_UPLOAD = (
    r"status of 400 \(Bad Request\) \(http://127\.0\.0\.1:\d+/api/uploads/tus/[0-9a-f-]+\)"
)
# Served under the strictest Content-Security-Policy the site may get.

# Each card's (state, bar value) as they change, recorded in the page so nothing is missed
# between two polls of the test.
RECORD_BARS = """() => {
  window.barHistory = {};
  const record = () => {
    for (const card of document.querySelectorAll(".upload-card")) {
      const name = card.querySelector(".name").textContent;
      const bar = card.querySelector("[role=progressbar]");
      const entry = [card.dataset.state, Number(bar.getAttribute("aria-valuenow"))];
      const history = (window.barHistory[name] ||= []);
      const last = history[history.length - 1];
      if (!last || last[0] !== entry[0] || last[1] !== entry[1]) history.push(entry);
    }
  };
  new MutationObserver(record).observe(document.getElementById("gallery"), {
    subtree: true, childList: true, attributes: true,
    attributeFilter: ["aria-valuenow", "data-state"],
  });
}"""

THUMBNAIL_SHOWN = """(card) => {
  const img = card.querySelector("img.thumb");
  return card.dataset.state === "done" && img !== null && img.complete && img.naturalWidth > 0;
}"""


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    response = page.goto(f"{base_url}/accounts/login/")
    assert response is not None
    assert "script-src 'self'" in response.headers.get("content-security-policy", "")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")
    expect(page.get_by_role("heading", name="Your pictures")).to_be_visible()


def picture_file(folder: Path, name: str) -> Path:
    """The test picture saved as ``name`` (in the format its suffix names), for the browser."""
    path = folder / "pictures" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(images.picture({".jpg": "JPEG", ".png": "PNG"}[path.suffix]))
    return path


def drop_files(page: Page, selector: str, paths: list[Path]) -> None:
    """Drop files on an element the way a browser does: dragenter, dragover, drop."""
    files = [
        {
            "name": path.name,
            "type": mimetypes.guess_type(path.name)[0] or "",
            "data": base64.b64encode(path.read_bytes()).decode(),
        }
        for path in paths
    ]
    data_transfer = page.evaluate_handle(
        """(files) => {
          const transfer = new DataTransfer();
          for (const file of files) {
            const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], file.name, { type: file.type }));
          }
          return transfer;
        }""",
        files,
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, event, {"dataTransfer": data_transfer})


def card(page: Page, name: str) -> Locator:
    return page.locator(".upload-card", has=page.locator(".name", has_text=name))


def wait_shown(page: Page, name: str, timeout: float = 30_000) -> Locator:
    located = card(page, name)
    expect(located).to_have_count(1)
    page.wait_for_function(THUMBNAIL_SHOWN, arg=located.element_handle(), timeout=timeout)
    return located


def test_drop_pictures_watch_them_finish_browse_and_delete(
    processes: Processes,
    page: Page,
    page_log: PageLog,
    output_dir: Path,
    tmp_path: Path,
    user: Any,
    password: str,
) -> None:
    # The embedded default: workers run inside the web process (so no Redis needed, even in
    # the Redis configuration: the in-memory layer is right for a single process).
    web = processes.runserver("web", REDIS_URL="")
    log_in(page, web.url, user.username, password)
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    page.evaluate(RECORD_BARS)
    drop_files(
        page,
        "#dropzone",
        [picture_file(tmp_path, "photo.jpg"), picture_file(tmp_path, "photo.png")],
    )

    for name in ("photo.jpg", "photo.png"):
        shown = wait_shown(page, name)
        expect(shown.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
        expect(shown.locator(".status")).to_have_text("Done")
        expect(shown.locator(".facts")).to_contain_text("128 \N{MULTIPLICATION SIGN} 128")
        expect(shown.locator(".swatches li").first).to_be_visible()
    history: dict[str, list[list[Any]]] = page.evaluate("window.barHistory")
    for name in ("photo.jpg", "photo.png"):
        states = history[name]
        assert ["uploading", 100] in states, f"{name}: the upload bar never reached 100 %: {states}"
        assert states[-1] == ["done", 100], f"{name}: processing did not end at 100 %: {states}"
        processing = [value for state, value in states if state == "processing"]
        assert processing == sorted(processing), f"{name}: the bar went backwards: {states}"
    # Chromium takes the AVIF source, the best format; the WebP stays as the fallback.
    current = card(page, "photo.jpg").locator("img.thumb").evaluate("img => img.currentSrc")
    assert current.endswith(".avif"), current

    # A file that only claims to be a picture: its card says what the API says.
    client = login(web.url, user.username, password)
    refused = client.post("/api/uploads/", files={"image": ("bad.jpg", NOT_AN_IMAGE, "image/jpeg")})
    assert refused.status_code == 400
    page.set_input_files(
        "#file-input", files=[{"name": "bad.jpg", "mimeType": "image/jpeg", "buffer": NOT_AN_IMAGE}]
    )
    bad = card(page, "bad.jpg")
    expect(bad).to_have_attribute("data-state", "rejected")
    expect(bad.get_by_role("alert")).to_have_text(refused.json()["error"])
    expect(bad.get_by_role("button", name="Dismiss")).to_be_visible()

    page.screenshot(path=output_dir / "upload-page.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=output_dir / "upload-page-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # After a reload the gallery comes from the API: both pictures, with srcset; the refused
    # file was never stored.
    listed = client.get("/api/uploads/").json()
    assert sorted((u["name"], u["status"]) for u in listed["uploads"]) == [
        ("photo.jpg", "done"),
        ("photo.png", "done"),
    ]
    page.reload()
    # Newest first, as the API lists them.
    expect(page.locator(".upload-card .name")).to_have_text([u["name"] for u in listed["uploads"]])
    for upload in listed["uploads"]:
        shown = wait_shown(page, upload["name"])
        expect(shown).to_have_attribute("data-upload-id", str(upload["id"]))
        [avif] = [r for r in upload["renditions"] if r["format"] == "AVIF"]
        # The best format first: AVIF in a source, WebP in the img (no JPEG by default).
        expect(shown.locator("picture > *")).to_have_count(2)
        source = shown.locator('picture > source:first-child[type="image/avif"]')
        expect(source).to_have_attribute("srcset", f"{avif['url']} {avif['width']}w")
        expect(shown.locator("img.thumb")).to_have_attribute("srcset", re.compile(r"\.webp 128w$"))
        # The ThumbHash, drawn in the page, stood in until the picture loaded.
        expect(shown.locator("img.placeholder")).to_have_attribute(
            "src", re.compile("^data:image/png;base64,")
        )
        expect(shown.locator("img.placeholder")).to_have_attribute("data-kind", "thumbhash")
    expect(page.locator(".upload-card")).to_have_count(2)
    expect(card(page, "bad.jpg")).to_have_count(0)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    # Delete asks for a second click, then the picture is gone from the page and the API.
    png = card(page, "photo.png")
    png_id = png.get_attribute("data-upload-id")
    png.get_by_role("button", name="Delete").click()
    png.get_by_role("button", name="Confirm delete").click()
    expect(card(page, "photo.png")).to_have_count(0)
    assert client.get(f"/api/uploads/{png_id}/").status_code == 404
    page.reload()
    wait_shown(page, "photo.jpg")
    expect(page.locator(".upload-card")).to_have_count(1)

    assert page_log.unexpected(REJECTED_UPLOAD) == [], page_log.errors


def start_web(processes: Processes, name: str, port: int) -> Process:
    """runserver without workers on a chosen port, so that a restart comes back on it."""
    process = processes.start(
        name,
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}", "--noworker"],
        port=port,
    )
    wait_until_serving(process)
    return process


@pytest.mark.redis
def test_the_page_catches_up_after_the_server_was_away(
    processes: Processes,
    page: Page,
    page_log: PageLog,
    output_dir: Path,
    tmp_path: Path,
    user: Any,
    password: str,
) -> None:
    port = free_port()
    web = start_web(processes, "web", port)
    log_in(page, web.url, user.username, password)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    # No worker yet: the picture is stored and waits.
    page.set_input_files("#file-input", str(picture_file(tmp_path, "photo.jpg")))
    waiting = card(page, "photo.jpg")
    expect(waiting).to_have_attribute("data-state", "queued")
    # A reload shows the same state, from the API and the snapshot.
    page.reload()
    expect(waiting).to_have_attribute("data-state", "queued")
    expect(waiting.locator(".status")).to_have_text("Waiting for a worker · 0 %")
    expect(waiting.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")

    # The web server goes away (once the page has read what it wanted); meanwhile a worker
    # does the job, and its events reach nobody.
    page.wait_for_load_state("networkidle")
    web.stop()
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    processes.runworker("worker", "thumbnails", "compute")
    upload = Upload.objects.get(original_name="photo.jpg")
    wait_for(lambda: Upload.objects.get(pk=upload.pk).status == Upload.Status.DONE, 30, "the jobs")
    page.screenshot(path=output_dir / "offline.png")

    # The server is back: the page reconnects by itself and shows what finished in the gap.
    start_web(processes, "web-again", port)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=30_000)
    wait_shown(page, "photo.jpg")
    expect(waiting.locator(".status")).to_have_text("Done")
    page.screenshot(path=output_dir / "caught-up.png")

    # Only the failed websocket attempts while the server was down may have been logged.
    unexpected = page_log.unexpected(r"WebSocket connection to .* failed")
    assert unexpected == [], "\n".join(page_log.errors)


def test_a_page_whose_session_ended_elsewhere_sends_the_user_to_log_in(
    processes: Processes, page: Page, page_log: PageLog, user: Any, password: str
) -> None:
    port = free_port()
    web = start_web(processes, "web", port)
    log_in(page, web.url, user.username, password)
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "live")

    # Logged out elsewhere (the session is gone from the server), and the server restarts: the
    # page's socket comes back without a session, and the server closes it as unauthenticated
    # (wire.close.Close.UNAUTHENTICATED, which the page knows from the wire's JSON).
    # (Once the page has read what it wanted: a read without the session would answer 401,
    # which ends the session on the page too, but not through the socket.)
    page.wait_for_load_state("networkidle")
    Session.objects.all().delete()
    web.stop()
    expect(connection).to_have_attribute("data-state", "offline")
    start_web(processes, "web-again", port)
    expect(connection).to_have_attribute("data-state", "ended", timeout=30_000)
    expect(connection).to_have_text("You are logged out. Log in again")

    # The page stopped reconnecting, and its link leads to the login page and back.
    page.wait_for_timeout(1500)
    expect(connection).to_have_attribute("data-state", "ended")
    connection.get_by_role("link", name="Log in again").click()
    page.wait_for_url(f"{web.url}/accounts/login/?next=/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{web.url}/")
    expect(connection).to_have_attribute("data-state", "live")

    # Only the failed websocket attempts while the server was down may have been logged.
    assert page_log.unexpected(r"WebSocket connection to .* failed") == [], page_log.errors


# Each card's bytes sent, as the page shows them, recorded in the page as they change.
RECORD_BYTES = """() => {
  window.bytesHistory = {};
  new MutationObserver(() => {
    for (const card of document.querySelectorAll(".upload-card")) {
      const name = card.querySelector(".name").textContent;
      const sent = Number(card.dataset.bytesSent || 0);
      const history = (window.bytesHistory[name] ||= []);
      if (history[history.length - 1] !== sent) history.push(sent);
    }
  }).observe(document.getElementById("gallery"), {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-bytes-sent"],
  });
}"""

PASTE = """(file) => {
  const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], file.name, { type: file.type }));
  document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer }));
}"""


# A folder dropped on the page, as Chromium hands it over (FileSystemEntry objects: a folder
# with a picture, a text file and a folder inside holding another picture).
DROP_FOLDER = """(files) => {
  const asFile = (f) => new File([Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0))],
                                 f.name, { type: f.type });
  const fileEntry = (f) => ({ isFile: true, isDirectory: false, name: f.name,
                              file: (ok) => ok(asFile(f)) });
  const folder = (name, entries) => ({
    isFile: false, isDirectory: true, name,
    createReader: () => {
      let given = false;
      const readEntries = (ok) => { const batch = given ? [] : entries; given = true; ok(batch); };
      return { readEntries };
    },
  });
  const top = folder("holiday", [
    fileEntry(files[0]),
    fileEntry({ name: "notes.txt", type: "text/plain", data: btoa("not a picture") }),
    folder("day two", [fileEntry(files[1])]),
  ]);
  const transfer = {
    types: ["Files"], files: [], dropEffect: "none",
    items: [{ kind: "file", webkitGetAsEntry: () => top }],
  };
  for (const type of ["dragenter", "dragover", "drop"]) {
    const event = new Event(type, { bubbles: true, cancelable: true });
    Object.defineProperty(event, "dataTransfer", { value: transfer });
    document.getElementById("dropzone").dispatchEvent(event);
  }
}"""


def test_an_upload_cut_off_or_reloaded_resumes_sending_only_what_the_server_lacks(
    processes: Processes,
    page: Page,
    page_log: PageLog,
    tmp_path: Path,
    user: Any,
    password: str,
) -> None:
    from tests.media_tasks.proxy import CuttingProxy
    from tests.media_tasks.test_resumable import noise_png

    web = processes.runserver("web", REDIS_URL="")
    chunk = 4 * 1024 * 1024  # static/media_tasks/resumable.js, CHUNK_SIZE
    slack = 256 * 1024  # request headers, API calls and the websocket beside the file
    with CuttingProxy(web.port or 0) as relay:
        log_in(page, relay.url, user.username, password)
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        page.evaluate(RECORD_BYTES)

        # 1. The connection drops in the middle of the second chunk; the client resumes.
        first = tmp_path / "big.png"
        first.write_bytes(noise_png(2000))  # 12 MB
        size = first.stat().st_size
        before = relay.sent
        relay.cut_after(chunk + chunk // 2)
        page.set_input_files("#file-input", str(first))
        shown = wait_shown(page, "big.png", timeout=120_000)
        assert relay.cuts == 1
        assert relay.sent - before <= size + chunk + slack
        sent = page.evaluate("window.bytesHistory['big.png']")
        assert sent == sorted(sent), f"the byte count went backwards: {sent}"
        assert sent[-1] == size
        expect(shown.locator(".status")).to_have_text("Done")

        # 2. The page is reloaded in the middle; the same file picked again goes on.
        second = tmp_path / "second.png"
        second.write_bytes(noise_png(2001))
        size = second.stat().st_size
        # The third chunk is held in the browser: the server has the first two (a chunk is
        # sent once the one before was answered), and the upload cannot finish first.
        held_chunks: list[Any] = []
        patches = 0

        def hold_third_chunk(route: Any) -> None:
            nonlocal patches
            if route.request.method == "PATCH":
                patches += 1
                if patches >= 3:
                    held_chunks.append(route)
                    return
            route.continue_()

        page.route("**/api/uploads/tus/**", hold_third_chunk)
        page.set_input_files("#file-input", str(second))

        def third_chunk_held() -> bool:
            page.wait_for_timeout(100)  # Playwright runs the route's handler meanwhile
            return bool(held_chunks)

        wait_for(third_chunk_held, 120, "the third chunk", interval=0)
        page.unroute("**/api/uploads/tus/**")
        page.reload()
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        page.evaluate(RECORD_BYTES)
        before = relay.sent
        page.set_input_files("#file-input", str(second))
        shown = wait_shown(page, "second.png", timeout=120_000)
        resumed = [sent for sent in page.evaluate("window.bytesHistory['second.png']") if sent]
        assert resumed[0] >= 2 * chunk, resumed
        assert resumed == sorted(resumed), resumed
        assert relay.sent - before <= size - 2 * chunk + slack

        # 3. A pasted picture goes up like any other; until its picture loads (held back here)
        # its card shows the ThumbHash; and its original is its owner's to take.
        held: list[Any] = []
        page.route("**/media/renditions/**", lambda route: held.append(route))
        pasted = images.picture("PNG")
        page.evaluate(
            PASTE,
            {"name": "pasted.png", "type": "image/png", "data": base64.b64encode(pasted).decode()},
        )
        waiting = card(page, "pasted.png")
        expect(waiting).to_have_attribute("data-state", "done", timeout=60_000)
        placeholder = waiting.locator("img.placeholder")
        expect(placeholder).to_have_attribute("data-kind", "thumbhash")
        expect(placeholder).to_be_visible()
        assert placeholder.evaluate("img => img.complete && img.naturalWidth > 0")
        assert not waiting.locator("img.thumb").evaluate(
            "img => img.complete && img.naturalWidth > 0"
        )
        assert held, "no rendition was asked for while held back"
        # Unrouting lets the held requests go on.
        page.unroute("**/media/renditions/**")
        shown = wait_shown(page, "pasted.png")
        download = shown.get_by_role("link", name="Download original")
        expect(download).to_have_attribute("download", "pasted.png")
        href = download.get_attribute("href")
        assert href is not None
        assert page.request.get(relay.url + href).body() == pasted

        # 4. A dropped folder: its pictures, in folders inside too; nothing else.
        folder_files = [
            {
                "name": name,
                "type": "image/png",
                "data": base64.b64encode(images.picture("PNG")).decode(),
            }
            for name in ("beach.png", "hills.png")
        ]
        page.evaluate(DROP_FOLDER, folder_files)
        for name in ("beach.png", "hills.png"):
            wait_shown(page, name)
        expect(card(page, "notes.txt")).to_have_count(0)

    assert Upload.objects.count() == 5
    assert page_log.unexpected(r"net::ERR_|Failed to load resource") == [], page_log.errors


def test_on_s3_the_page_sends_a_picture_straight_to_the_bucket(
    processes: Processes,
    page: Page,
    page_log: PageLog,
    tmp_path: Path,
    user: Any,
    password: str,
    s3_env: dict[str, str],
) -> None:
    from tests.media_tasks.proxy import CuttingProxy

    web = processes.runserver("web", REDIS_URL="", **s3_env)
    photo = tmp_path / "trip.jpg"
    photo.write_bytes(images.photo_like(1200, 800))
    with CuttingProxy(web.port or 0) as relay:
        log_in(page, relay.url, user.username, password)
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        before = relay.sent
        page.set_input_files("#file-input", str(photo))
        # Processed, and its thumbnail shown from the bucket (allowed by the page's CSP).
        shown = wait_shown(page, "trip.jpg", timeout=60_000)
        expect(shown.locator(".status")).to_have_text("Done")
        current = shown.locator("img.thumb").evaluate("img => img.currentSrc")
        assert current.startswith(s3_env["AWS_S3_ENDPOINT_URL"]), current
        # The file went to the bucket: the site got only small requests.
        assert relay.sent - before < photo.stat().st_size // 4
    (upload,) = Upload.objects.all()
    assert upload.direct_key.startswith("incoming/")
    assert upload.bytes == photo.stat().st_size
    assert page_log.unexpected() == [], page_log.errors
