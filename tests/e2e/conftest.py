"""Browser tests: Playwright's sync API driving Debian's Chromium against pytest-django's live server.

Playwright cannot download its own browser here, so we launch the system one (`make browser` installs it). The
live server serves /static/ through django.contrib.staticfiles' handler (pytest-django does that whenever
staticfiles is installed), so no collectstatic is needed. Each test gets fresh browser contexts (cookies and
storage of their own); the browser process is shared by the tests of this folder and stopped after them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--no-first-run",
]
TIMEOUT_MS = 10_000


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # Every test logs in several times; the default PBKDF2 work factor is for production, not for these.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install it with `make browser` (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    # While Playwright's sync API is started, this thread has a running event loop, and Django's ORM refuses to
    # run beside one unless told. Package scope: the loop (and the flag) end with this folder's tests, so the
    # rest of the suite runs with Django's usual check.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            # launch() gives the browser a fresh temporary profile (user data dir) and deletes it on close.
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                                                 timeout=60_000)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_context(browser, live_server):
    """Make isolated browser contexts (one per person) that are closed after the test."""
    contexts = []

    def make(**options):
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def login():
    """Log a page in through the real login form; returns the page."""

    def log_in(page, username: str, password: str = PASSWORD):
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        assert "/accounts/login/" not in page.url, f"login as {username} failed: still on {page.url}"
        return page

    return log_in


@pytest.fixture
def page_as(new_context, login):
    """A page in a fresh context, logged in as the given user."""

    def make(user, **context_options):
        page = new_context(**context_options).new_page()
        return login(page, user.get_username())

    return make
