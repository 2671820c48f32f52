"""Bounded work for every input (issue 11, point 5): Markdown rendering linear in its input, error responses that do
not grow with the request, gunicorn workers recycled, and slow clients that cannot starve the web server.

The time bounds here are generous on purpose (the suite runs on two shared cores): each one is far above what the
code needs and far below what the code it replaced took (Python-Markdown: 20 s for "[" × 10,000, 92 s for × 20,000,
so hours for the 100,000 characters used here; a sync worker held by a half-sent request: until the 300 s timeout).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import psutil
import pytest
from django.urls import reverse

from annotation.rendering import render_markdown
from annotation.services.assignment import lease_next
from annotation.services.judgments import MAX_BODY_BYTES
from bench.annotate_load import free_port, gunicorn_command
from crossfeed.api_errors import MAX_ERRORS_SHOWN, bounded_errors
from tests.conftest import item_line, new_key

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN_BOUND_S = 2.0
SMALL_ERROR_BYTES = 20_000


@contextmanager
def time_limit(seconds: float, what: str):
    """Fail after `seconds` instead of waiting for a renderer that may need hours (the alarm interrupts it)."""

    def expired(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- 1. Markdown in time linear in the input -------------------------------------------------------------------

N = 100_000
PATHOLOGICAL = {
    "open brackets": "[" * N,
    "image openers": "![" * (N // 2),
    "empty links": "[](" * (N // 3),
    "link openers": "[a](" * (N // 4),
    "closed brackets": "[" * (N - 1) + "]",
    "stars": "*" * N,
    "underscores": "_" * N,
    "star runs": "*a**" * (N // 4),
    "mixed emphasis": "**_" * (N // 3),
    "alternating delimiters": "*_" * (N // 2),
    "angle brackets": "<" * N,
    "unclosed tags": "<a " * (N // 3),
    "backticks": "`" * N,
    "growing backtick runs": "".join("a" + "`" * i for i in range(1, 440)),
    "nested blockquotes": ">" * N,
    "spaced blockquotes": "> " * (N // 2),
    "nested ordered lists": "1. " * (N // 3),
    "nested bullet lists": "".join("  " * (i % 40) + "- x\n" for i in range(N // 50)),
    "entities": "&#x" * (N // 3),
    "escapes": "\\[" * (N // 2),
    "table cells": "|a" * 2000 + "\n" + "|-" * 2000 + "\n" + "x\n" * 46_000,
    "line breaks": "a\n" * (N // 2),
    "bare urls": "www.a_" * (N // 6),
    "autolink openers": "<http://a" * (N // 9),
    "e-mail autolink openers": "<a@b" * (N // 4),
    "mixed": ("[*_`<![" * N)[:N],
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_it_renders_pathological_markdown_of_100000_characters_in_bounded_time(text):
    started = time.monotonic()
    with time_limit(MARKDOWN_BOUND_S, "rendering"):
        html = render_markdown(text)
    assert time.monotonic() - started < MARKDOWN_BOUND_S
    assert html


def test_it_keeps_the_markdown_features_of_the_guidelines_and_responses():
    html = render_markdown("Rank **carefully**.\nSecond line\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n\n"
                           "1. one\n\n```python\nif a < b:\n    pass\n```\n\n2. two\n\n- x\n* y\n\n~~old~~ "
                           "[site](https://example.org) [mail](mailto:a@example.org) [bad](javascript:alert(1)) "
                           "<script>alert(1)</script>")
    assert "<strong>carefully</strong>.<br>\nSecond line" in html  # single newlines kept (LLM output, poems)
    assert '<th align="left">a</th>' in html and '<td align="right">2</td>' in html
    assert "<pre><code>if a &lt; b:\n    pass\n</code></pre>" in html
    assert '<ol start="2">' in html  # numbering survives the code block
    assert html.count("<ul>") == 2  # sane lists: another bullet character starts another list
    assert "<del>old</del>" in html
    assert 'href="https://example.org"' in html and 'href="mailto:a@example.org"' in html
    assert "javascript" not in html and "<a rel=\"noopener noreferrer nofollow\">bad</a>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html


def test_it_shows_text_nested_past_the_limit_as_plain_text():
    assert render_markdown("> " * 10 + "deep").count("<blockquote>") == 10
    html = render_markdown("> " * 100 + "deep <b>text</b>\n\n*after*")
    assert "<blockquote>" not in html
    assert "&gt; &gt; deep &lt;b&gt;text&lt;/b&gt;" in html and "*after*" in html


def test_it_shows_a_lone_surrogate_as_a_replacement_character():
    assert render_markdown("a \ud800 b \ud83d\ude00") == "<p>a \ufffd b \U0001f600</p>\n"


def test_it_keeps_autolinks_and_shows_every_other_angle_bracket():
    html = render_markdown("<https://example.org> <a@example.org> `<b>` \ufdd0 <i>x</i>")
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">https://example.org</a>' in html
    assert '<a href="mailto:a@example.org" rel="noopener noreferrer nofollow">a@example.org</a>' in html
    assert "<code>&lt;b&gt;</code> \ufffd &lt;i&gt;x&lt;/i&gt;" in html


def test_an_annotation_page_with_pathological_responses_answers_quickly(client, annotator, campaign, import_items,
                                                                        settings):
    # Model outputs become item texts through win-rate campaigns; here two of them are built to hurt.
    settings.CROSSFEED = {**settings.CROSSFEED, "MAX_RESPONSE_CHARS": N, "MAX_PROMPT_CHARS": N}
    import_items(campaign, [item_line("hostile-md", prompt="*a**" * (N // 4),
                                      responses=["[" * N, "![" * (N // 2), "a fair answer"])])
    client.force_login(annotator)
    started = time.monotonic()
    with time_limit(4 * MARKDOWN_BOUND_S, "the annotation page"):
        response = client.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}),
                               HTTP_HX_REQUEST="true")
    assert time.monotonic() - started < 4 * MARKDOWN_BOUND_S
    assert response.status_code == 200
    html = response.content.decode()
    assert "[" * 1000 in html and "a fair answer" in html


# --- 2. judgments and errors bounded ---------------------------------------------------------------------------


def judgments_url(item) -> str:
    return f"/api/v1/items/{item.id}/judgments/"


def many_keys_body(n_keys: int) -> bytes:
    keys = b", ".join(b'"%d": 1' % (10_000_000 + index) for index in range(n_keys))
    return b'{"ranks": {' + keys + b'}, "idempotency_key": "k-1"}'


@pytest.fixture
def leased(annotator, campaign, items):
    return lease_next(campaign=campaign, annotator=annotator).item


def test_an_oversized_judgment_gets_a_small_400_without_being_parsed(annotator, leased, api):
    body = many_keys_body(2_700_000)  # 31 MB, as in the issue
    assert len(body) > 30_000_000
    response = api(annotator).post(judgments_url(leased), data=body, content_type="application/json")
    assert response.status_code == 400
    assert len(response.content) < SMALL_ERROR_BYTES
    assert f"a judgment is at most {MAX_BODY_BYTES} bytes" in response.json()["body"][0]


def test_a_judgment_with_more_keys_than_responses_gets_one_message(annotator, leased, api):
    body = many_keys_body(15_000)  # under the size limit: refused by the count of its keys
    assert len(body) < MAX_BODY_BYTES
    response = api(annotator).post(judgments_url(leased), data=body, content_type="application/json")
    assert response.status_code == 400
    assert len(response.content) < SMALL_ERROR_BYTES
    assert response.json()["ranks"] == ["15000 keys sent, but this item has 3 responses: send one entry per "
                                        "response id, keyed by the ids that `next` returned"]


def test_it_quotes_only_the_start_of_what_the_client_sent(annotator, leased, api):
    ids = [str(pk) for pk in leased.responses.order_by("position").values_list("id", flat=True)]
    unknown_flags = [f"flag-{index}-" + "x" * 100 for index in range(1000)]
    body = {"ranks": {ids[0]: 1, ids[1]: 2, "y" * 100_000: 3}, "flags": {ids[0]: unknown_flags},
            "idempotency_key": new_key()}
    response = api(annotator).post(judgments_url(leased), data=body, format="json")
    assert response.status_code == 400
    assert len(response.content) < SMALL_ERROR_BYTES
    errors = response.json()
    assert any("… (100000 characters)' is not a response of this item" in message for message in errors["ranks"])
    assert "and 990 more; allowed:" in errors["flags"][0]


def test_the_annotation_page_refuses_an_oversized_submission_without_echoing_it(client, annotator, leased):
    client.force_login(annotator)
    response = client.post(reverse("annotation:submit", kwargs={"item_id": leased.id}),
                           {"comment": "x" * (MAX_BODY_BYTES + 1), "idempotency_key": new_key()})
    assert response.status_code == 400
    assert len(response.content) < SMALL_ERROR_BYTES
    assert "too large" in response.content.decode()


def test_every_api_error_response_shows_the_first_100_errors_and_the_count(admin_user, campaign, api):
    response = api(admin_user).post(f"/api/v1/campaigns/{campaign.id}/exports/",
                                    {"languages": ["x" * 40] * 5000}, format="json")
    assert response.status_code == 400
    assert len(response.content) < SMALL_ERROR_BYTES
    body = response.json()
    assert len(body["languages"]) == MAX_ERRORS_SHOWN
    assert body["error_count"] == 5000 and body["truncated"] is True
    assert body["detail"] == f"5000 errors; the first {MAX_ERRORS_SHOWN} are shown"


def test_bounded_errors_keeps_the_shape_and_shortens_long_messages():
    assert bounded_errors({"a": ["x"], "b": [{}, {"c": ["y"]}]}) == {"a": ["x"], "b": [{}, {"c": ["y"]}]}
    assert bounded_errors(["m"] * 3, limit=2) == ["m", "m", "3 errors; the first 2 are shown"]
    assert bounded_errors({"a": ["m"] * 2, "b": ["n"]}, limit=2) == {
        "a": ["m", "m"], "detail": "3 errors; the first 2 are shown", "error_count": 3, "truncated": True}
    assert bounded_errors({"z" * 5000: ["q" * 5000]}) == {
        "z" * 1000 + "… (5000 characters)": ["q" * 1000 + "… (5000 characters)"]}


# --- 3 and 4. the web server: recycled workers, slow clients ---------------------------------------------------


def server_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "CROSSFEED_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "crossfeed.settings",
           "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", **extra}
    env.pop("DATABASE_URL", None)
    return env


def http_get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    with closing(socket.create_connection(("127.0.0.1", port), timeout=timeout)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return int(received.split(b" ", 2)[1]), received


@contextmanager
def gunicorn(env: dict[str, str], *options: str):
    """gunicorn started as bin/serve starts it (the same config file), on a free port of 127.0.0.1."""
    port = free_port()
    process = subprocess.Popen(gunicorn_command(port, *options), cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"gunicorn exited with {process.returncode} while starting"
            try:
                if http_get(port, "/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not answer /healthz within 60 s"
                time.sleep(0.2)
        yield port, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_gunicorn_recycles_its_workers(tmp_path):
    env = server_env(tmp_path, WEB_MAX_REQUESTS="5", WEB_MAX_REQUESTS_JITTER="2")
    with gunicorn(env, "--workers", "1") as (port, process):
        master = psutil.Process(process.pid)
        seen = set()
        for _ in range(30):
            assert http_get(port, "/healthz", timeout=30)[0] == 200
            seen |= {child.pid for child in master.children()}
    assert len(seen) >= 3, f"one worker answered 30 requests with max_requests 5: {seen}"


HALF_SENT = [
    b"",  # connected, sent nothing
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # a head without its end
    b"POST /api/v1/items/1/judgments/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{\"ranks\": ",  # a body that stops
]


def open_half_sent(stack: ExitStack, port: int, n: int) -> list[socket.socket]:
    sockets = []
    for index in range(n):
        sock = stack.enter_context(closing(socket.create_connection(("127.0.0.1", port), timeout=30)))
        sock.sendall(HALF_SENT[index % len(HALF_SENT)])
        sockets.append(sock)
    return sockets


WORKERS = 2  # the fault tests' size: two cores here


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    env = server_env(tmp_path_factory.mktemp("slow-clients"), WEB_CLIENT_TIMEOUT="6")
    with gunicorn(env, "--workers", str(WORKERS)) as (port, _process):
        yield port


@pytest.mark.parametrize("n_slow", [3, 2 * WORKERS + 1, 50])
def test_half_sent_requests_do_not_hold_up_healthz(web, n_slow):
    with ExitStack() as stack:
        open_half_sent(stack, web, n_slow)
        time.sleep(0.5)  # let the server accept them all
        started = time.monotonic()
        status, _ = http_get(web, "/healthz", timeout=5)
        assert status == 200
        assert time.monotonic() - started < 5


def test_a_request_sent_in_pieces_is_served_once_whole(web):
    body = json.dumps({"ranks": {}}).encode()
    with closing(socket.create_connection(("127.0.0.1", web), timeout=30)) as sock:
        sock.sendall(b"POST /api/v1/items/1/judgments/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.3)
        sock.sendall(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:3])
        time.sleep(0.3)
        assert http_get(web, "/healthz", timeout=5)[0] == 200  # served meanwhile
        sock.sendall(body[3:])
        status, _ = read_response(sock)
    assert status == 401  # parsed whole and answered by Django (no credentials)


def test_it_answers_expect_100_continue_before_the_body(web):
    body = json.dumps({"comment": "x" * 5000}).encode()
    with closing(socket.create_connection(("127.0.0.1", web), timeout=30)) as sock:
        sock.sendall(b"POST /api/v1/items/1/judgments/ HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        status, received = read_response(sock)
    assert status == 401  # answered by Django (no credentials)
    assert b"100 Continue" not in received  # once, not twice


def test_a_client_that_stops_sending_gets_408_after_the_client_timeout(web):
    with closing(socket.create_connection(("127.0.0.1", web), timeout=30)) as sock:
        sock.sendall(HALF_SENT[1])
        status, _ = read_response(sock)
    assert status == 408


def test_it_refuses_a_body_larger_than_the_limit_unread(web):
    with closing(socket.create_connection(("127.0.0.1", web), timeout=30)) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % (2 * 1024**3))
        status, _ = read_response(sock)
    assert status == 413
