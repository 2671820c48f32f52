"""How responses leave the server: pages compressed, static files under hashed names and
compressed ahead of time, so that browsers keep them for good (docs/deploy.md, "Compression and caching").

`make run` collects the static files (collectstatic) before it serves; whitenoise then serves each under its hashed
name (css/crossfeed.3f2a….css) with `Cache-Control: max-age=315360000, public, immutable`, and its .gz twin to a
browser that accepts gzip. A page names the hashed files, so a new version of a file is a new name and no browser
ever keeps an old one.
"""

from __future__ import annotations

from django.middleware.gzip import GZipMiddleware
from whitenoise.storage import CompressedManifestStaticFilesStorage


class PageGZipMiddleware(GZipMiddleware):
    """Django's GZipMiddleware for HTML pages (and the htmx partials that are parts of them), nothing else.

    File downloads (exports, evaluation outputs) are FileResponses: uncompressed, gunicorn hands the open file to the
    kernel (sendfile) with its length; compressed on the fly they would hold a worker process for the whole download
    and lose both, and Parquet files are compressed already. API answers are small JSON documents read by scripts;
    they stay as they are (a proxy may compress them). GZipMiddleware itself mitigates BREACH by adding random bytes
    to every compressed answer, and Django masks the CSRF token anew in every response.
    """

    def process_response(self, request, response):
        if response.streaming or not response.get("Content-Type", "").startswith("text/html"):
            return response
        return super().process_response(request, response)


class CollectedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """whitenoise's storage (hashed names, .gz twins, the manifest staticfiles.json) where collectstatic has run;
    plain names where it has not (the test suite, the browser tests' live server, a server started without `make
    run`), so that a page never fails for want of a manifest."""

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:  # read from STATIC_ROOT/staticfiles.json when the storage is made; empty without
            return name
        return super().stored_name(name)
