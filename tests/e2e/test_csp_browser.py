"""The pages under the Content-Security-Policy in a real browser: every page carries the policy, and the annotation
workspace (htmx), the training run's charts, the evaluation dashboards (charts, htmx filters), the admin's own
pages and the API docs do their work with not one violation reported by the browser."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotation.models import JobStatus
from annotation.services.judgments import judgment_submit
from evaluation.models import EvaluationResult, EvaluationRun
from tests.conftest import new_key, ranks_for
from tests.e2e.test_annotate_browser import open_workspace, rank_with_keyboard
from training.models import BaseModel, TrainingMetric, TrainingRun

pytestmark = pytest.mark.e2e


class Violations(list):
    """What the browser reports about the policy, on the console and as securitypolicyviolation events."""

    def watch(self, page):
        def console(message) -> None:
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
                self.append(f"{page.url}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: self.append(f"{page.url}: page error {error}"))
        # Init scripts come from the browser's debugging protocol, not from the page: the policy does not apply.
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.error("
            "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
        )
        return page


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response.status == 200, (url, response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in policy and "unsafe" not in policy, (url, policy)


@pytest.fixture
def base_model(db, tmp_path) -> BaseModel:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    return BaseModel.objects.create(name="csp-base", path=str(folder))


@pytest.fixture
def training_run(base_model) -> TrainingRun:
    run = TrainingRun.objects.create(kind="sft_dpo", base_model=base_model, status=JobStatus.SUCCEEDED, step=4,
                                     total_steps=4, finished_at=timezone.now())
    for line, (stage, step) in enumerate([("sft", 1), ("sft", 2), ("dpo", 1), ("dpo", 2)]):
        TrainingMetric.objects.create(run=run, stage=stage, line=line, step=step, event="log",
                                      values={"loss": 1.0 / (line + 1), "rewards/accuracies": 0.5,
                                              "rewards/margins": 0.1 * step})
    return run


@pytest.fixture
def evaluation_runs(base_model) -> tuple[EvaluationRun, EvaluationRun]:
    runs = []
    for scores in ((50.0, 75.0), (75.0, 50.0)):
        run = EvaluationRun.objects.create(base_model=base_model, benchmarks=["xcopa"], status=JobStatus.SUCCEEDED,
                                           finished_at=timezone.now())
        for language, value in zip(("sw", "ta"), scores, strict=True):
            EvaluationResult.objects.create(run=run, benchmark="xcopa", language=language, metric="accuracy",
                                            value=value, n=4)
        runs.append(run)
    return runs[0], runs[1]


def test_the_annotation_workspace_works_under_the_policy(new_context, login, annotator, campaign, items):
    violations = Violations()
    page = violations.watch(new_context().new_page())
    login(page, annotator.get_username())
    visit(page, f"/campaigns/{campaign.id}/annotate/")
    order = open_workspace(page, campaign)
    first_item = page.get_attribute("#judgment-form", "data-item")
    rank_with_keyboard(page, len(order))
    with page.expect_response(lambda response: response.url.endswith(f"/items/{first_item}/submit/")):
        page.keyboard.press("Enter")
    expect(page.locator("#workspace .notice")).to_contain_text("Saved")
    page.keyboard.press("?")  # the shortcuts dialog, from annotate.js
    assert violations == []


def test_the_training_run_draws_its_charts_under_the_policy(new_context, login, admin_user, training_run):
    violations = Violations()
    page = violations.watch(new_context().new_page())
    login(page, admin_user.get_username())
    visit(page, f"/training/runs/{training_run.id}/")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-loss'))"
                           " && Chart.getChart(document.getElementById('chart-dpo'))")
    points = page.evaluate("() => Chart.getChart(document.getElementById('chart-loss')).data.datasets"
                           ".map(set => set.data.length)")
    assert points == [2, 2]
    visit(page, "/training/")
    assert violations == []


def test_the_evaluation_dashboards_work_under_the_policy(new_context, login, admin_user, evaluation_runs):
    a, b = evaluation_runs
    violations = Violations()
    page = violations.watch(new_context().new_page())
    login(page, admin_user.get_username())
    visit(page, "/evaluation/")
    visit(page, f"/evaluation/runs/{a.id}/")
    page.wait_for_function("() => document.querySelectorAll('canvas[data-drawn]').length === 1")
    visit(page, f"/evaluation/compare/?a={a.id}&b={b.id}")
    expect(page.locator("#comparison-table")).to_contain_text("+25.0")
    page.check("input[name=tier][value=low]")
    with page.expect_response(lambda response: "/evaluation/compare/" in response.url):
        page.click("form.filters button[type=submit]")
    visit(page, f"/evaluation/runs/{a.id}/outputs/?benchmark=xcopa&language=sw")
    # The evaluation pages' styles come from a file now: the deltas still get their colour.
    visit(page, f"/evaluation/compare/?a={a.id}&b={b.id}")
    colour = page.eval_on_selector(".delta.better", "element => getComputedStyle(element).color")
    assert colour not in ("", "rgb(0, 0, 0)"), colour
    assert violations == []


def test_the_admin_and_the_api_docs_work_under_the_policy(new_context, login, admin_user, annotator, campaign,
                                                          items, training_run, evaluation_runs):
    judgment_submit(annotator=annotator, item_id=items[0].id, ranks=ranks_for(items[0]), idempotency_key=new_key())
    violations = Violations()
    page = violations.watch(new_context().new_page())
    login(page, admin_user.get_username())
    for url in ("/admin/", f"/admin/annotation/campaign/{campaign.id}/change/", "/admin/annotation/campaign/add/",
                f"/admin/training/trainingrun/{training_run.id}/change/", "/admin/training/trainingrun/new/",
                "/admin/evaluation/evaluationrun/add/", f"/admin/annotation/campaign/{campaign.id}/stats/",
                f"/admin/annotation/campaign/{campaign.id}/export/"):
        visit(page, url)
    visit(page, f"/admin/annotation/campaign/{campaign.id}/quality/")
    page.wait_for_selector("#quality-chart[data-drawn]")
    visit(page, "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Crossfeed API")
    assert violations == []


def test_a_violation_would_be_seen(new_context, login, annotator):
    # The watch itself: an inline script injected into a page is refused, and the refusal is reported.
    violations = Violations()
    page = violations.watch(new_context().new_page())
    login(page, annotator.get_username())
    with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
                      " document.body.appendChild(s); }")
    assert page.evaluate("window.__ran") is None
    assert any("script-src" in violation for violation in violations), violations
