"""Served as Django deployments serve (issue 16, docs/deploy.md): pages gzip-compressed for browsers that accept it,
file downloads not; static files under hashed names, precompressed, with a one-year immutable Cache-Control, through
the storage `make run` collects with (crossfeed/serving.py)."""

from __future__ import annotations

import gzip
import re

import pytest
from django.core.management import call_command
from django.http import FileResponse, HttpResponse, JsonResponse
from django.test import Client, RequestFactory
from django.urls import reverse

from crossfeed.serving import PageGZipMiddleware

ONE_YEAR = 365 * 24 * 3600


def test_it_serves_the_annotation_page_gzip_compressed_when_the_browser_accepts_it(client, annotator, campaign,
                                                                                   items):
    client.force_login(annotator)
    url = reverse("annotation:annotate", kwargs={"campaign_id": campaign.id})
    plain = client.get(url)
    packed = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert packed.status_code == 200 and packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    page = gzip.decompress(packed.content).decode()
    assert '<div id="workspace"' in page and len(packed.content) < len(page.encode()) / 2
    assert not plain.has_header("Content-Encoding") and '<div id="workspace"' in plain.content.decode()


def test_it_compresses_the_next_item_htmx_swaps_in(client, annotator, campaign, items):
    client.force_login(annotator)
    answer = client.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), HTTP_HX_REQUEST="true",
                         HTTP_ACCEPT_ENCODING="gzip")
    assert answer["Content-Encoding"] == "gzip"
    assert 'id="judgment-form"' in gzip.decompress(answer.content).decode()


def test_it_sends_file_downloads_and_api_answers_as_they_are(tmp_path):
    # Exports and evaluation outputs are FileResponses: gunicorn sends them with sendfile and their length.
    path = tmp_path / "export.jsonl"
    path.write_text('{"prompt": "x"}\n' * 1000)
    request = RequestFactory().get("/", HTTP_ACCEPT_ENCODING="gzip")
    with path.open("rb") as handle:
        download = PageGZipMiddleware(lambda request: FileResponse(handle))(request)
        assert not download.has_header("Content-Encoding") and download["Content-Length"] == str(16_000)
    answer = PageGZipMiddleware(lambda request: JsonResponse({"items": ["x"] * 100}))(request)
    assert not answer.has_header("Content-Encoding")
    page = PageGZipMiddleware(lambda request: HttpResponse("<p>page</p>" * 100))(request)
    assert page["Content-Encoding"] == "gzip"


@pytest.fixture
def collected(settings, tmp_path):
    """collectstatic as `make run` runs it, with the project's storage, into a fresh STATIC_ROOT."""
    settings.STATIC_ROOT = tmp_path / "static"
    # Crossfeed's own static files only (the admin's and Swagger's take the same path and twice the time).
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    call_command("collectstatic", interactive=False, verbosity=0)
    return settings.STATIC_ROOT


def test_it_serves_hashed_static_files_compressed_with_a_one_year_immutable_cache(collected, admin_user):
    client = Client()  # its handler starts whitenoise on the STATIC_ROOT just collected
    client.force_login(admin_user)
    page = client.get("/", follow=True).content.decode()
    stylesheet = re.search(r'href="(/static/css/crossfeed\.[0-9a-f]{12}\.css)"', page)[1]
    script = re.search(r'src="(/static/vendor/htmx-[0-9.]+/htmx\.min\.[0-9a-f]{12}\.js)"', page)[1]
    for url in (stylesheet, script):
        served = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
        assert served.status_code == 200, url
        cache_control = served["Cache-Control"]
        assert "immutable" in cache_control and "public" in cache_control, cache_control
        assert int(re.search(r"max-age=(\d+)", cache_control)[1]) >= ONE_YEAR
        assert served["Content-Encoding"] == "gzip"  # the .gz twin collectstatic wrote
        body = gzip.decompress(b"".join(served.streaming_content))
        served.close()
        assert body == (collected / url.removeprefix("/static/")).read_bytes()


def test_pages_name_plain_static_files_where_nothing_was_collected(settings, tmp_path, admin_user):
    # The test suite and the browser tests' live server run without collectstatic: no manifest, plain names.
    settings.STATIC_ROOT = tmp_path / "empty"
    client = Client()
    client.force_login(admin_user)
    page = client.get("/", follow=True).content.decode()
    assert 'href="/static/css/crossfeed.css"' in page
