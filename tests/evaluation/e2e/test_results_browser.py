"""The evaluation pages in a real browser: numbers and a drawn chart on the results page, model text kept inert,
the comparison's filter swapped in by htmx."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.evaluation.conftest import output_record

pytestmark = pytest.mark.e2e

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture
def runs(finished_run):
    a = finished_run(results=[("xcopa", "sw", "accuracy", 50.0, 4), ("xcopa", "ta", "accuracy", 75.0, 4),
                              ("flores-en-xx", "sw", "bleu", 12.345, 5), ("flores-en-xx", "ar", "bleu", 7.5, 5)],
                     skipped=[("xcopa", "ar", "xcopa has no ar data")],
                     records=[output_record("flores-en-xx", "sw", "1", XSS, off_target=True)])
    b = finished_run(results=[("xcopa", "sw", "accuracy", 75.0, 4), ("xcopa", "ta", "accuracy", 50.0, 4),
                              ("flores-en-xx", "sw", "bleu", 14.0, 5), ("flores-en-xx", "ar", "bleu", 7.5, 5)])
    return a, b


def test_the_results_page_shows_numbers_and_draws_a_chart_per_benchmark(page_as, annotator, runs):
    a, _ = runs
    page = page_as(annotator)
    page.goto(f"/evaluation/runs/{a.id}/")
    table = page.locator("#benchmark-flores-en-xx table.results")
    expect(table).to_contain_text("12.3")
    expect(table).to_contain_text("Swahili")
    expect(page.locator("#benchmark-xcopa")).to_contain_text("75.0")
    expect(page.locator("#benchmark-xcopa .skipped")).to_contain_text("ar")
    page.wait_for_function("() => window.Chart && document.querySelectorAll('canvas[data-drawn]').length === 2")
    drawn = page.evaluate("() => [...document.querySelectorAll('canvas[data-chart]')]"
                          ".map(c => Chart.getChart(c).data.datasets[0].data)")
    assert [7.5, 12.35] in drawn and [50, 75] in drawn


def test_model_output_stays_text_in_the_drill_down(page_as, admin_user, runs):
    a, _ = runs
    page = page_as(admin_user)  # the outputs are for admins
    page.goto(f"/evaluation/runs/{a.id}/outputs/?benchmark=flores-en-xx&language=sw")
    row = page.locator("tr.off-target")
    expect(row).to_contain_text("off-target")
    expect(row).to_contain_text('<img src=x onerror="window.__xss=1">')
    assert page.evaluate("window.__xss") is None


def test_the_comparison_filters_in_place(page_as, annotator, runs):
    a, b = runs
    page = page_as(annotator)
    page.goto(f"/evaluation/compare/?a={a.id}&b={b.id}")
    expect(page.locator("#comparison-table")).to_contain_text("+25.0")
    page.evaluate("window.__samePage = 'kept'")
    page.check("input[name=tier][value=low]")
    with page.expect_response(lambda response: "/evaluation/compare/" in response.url):
        page.click("form.filters button[type=submit]")
    expect(page.locator("#comparison-table tbody tr")).to_have_count(1)
    expect(page.locator("#comparison-table tbody")).to_contain_text("Swahili")
    assert page.evaluate("window.__samePage") == "kept", "htmx swapped the table, no full page load"
    assert "tier=low" in page.url
