"""The browser fixtures of tests/e2e (system Chromium, live server, logged-in pages), reused for the evaluation
pages. Package scope: the browser (and its event loop) lives only while this folder's tests run."""

from tests.e2e.conftest import browser, fast_passwords, login, new_context, page_as

__all__ = ["browser", "fast_passwords", "login", "new_context", "page_as"]
