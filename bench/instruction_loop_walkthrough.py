"""Issue 14's "Done when" against a running `make run`: a browser (Playwright + Chromium) drives the real server and
its real worker lanes, nothing in-process.

    make run &                                   # in a fresh clone: the demo, the tiny model, the demo translator
    .venv/bin/python bench/instruction_loop_walkthrough.py [--url http://127.0.0.1:8000] [--var var]

The admin (var/demo-logins.json) queues a translation job of the "Sample instructions" set into Arabic, Simplified
Chinese and Swahili with the demo translator and post-editing; the accelerator lane translates; the post-editing
campaign appears on the job's page; three demo annotators native in those languages (layla, wei, amina) each edit
one translation and accept another on the annotate page; the admin exports the SFT data from the job's page, follows
"Train on this", queues the SFT run (4 steps), and the accelerator lane trains it. Prints one JSON line per stage
with its wall time, and exits non-zero at the first thing that does not happen. Not part of `make test` (it needs the
running server); tests/e2e/test_instruction_loop_browser.py is the same path with the jobs run in the test process.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
LANGUAGES = {"ar": ("layla", "مرحبا"), "zh-Hans": ("wei", "你好"), "sw": ("amina", "Habari")}
FAST = {"max_steps": 4, "save_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1, "max_length": 128, "warmup_steps": 0, "gradient_checkpointing": False}


def say(stage: str, began: float, **values) -> None:
    print(json.dumps({"stage": stage, "seconds": round(time.perf_counter() - began, 1), **values},
                     ensure_ascii=False), flush=True)


def login(browser, url: str, username: str, password: str):
    page = browser.new_context(base_url=url).new_page()
    page.set_default_timeout(30_000)
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    if "/accounts/login/" in page.url:
        sys.exit(f"login as {username} failed")
    return page


def wait_for(page, selector: str, *, text: str | None = None, seconds: int) -> None:
    """Reload until the selector (with the text) is there: the pages poll themselves, this only bounds the wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        locator = page.locator(selector)
        if locator.count() and (text is None or text in locator.first.inner_text()):
            return
        page.wait_for_timeout(2000)
        page.reload()
    sys.exit(f"{selector} {text or ''} did not appear on {page.url} within {seconds} s")


def post_edit_two(page, campaign_url: str, addition: str) -> None:
    page.goto(campaign_url)
    page.wait_for_selector("#post-edit-form textarea")
    first = page.get_attribute("#post-edit-form", "data-item")
    page.locator("#post-edit-form textarea").last.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type(addition)
    with page.expect_response(lambda response: response.url.endswith(f"/items/{first}/submit/")):
        page.keyboard.press("Control+Enter")
    page.wait_for_function("old => document.getElementById('post-edit-form')?.dataset.item !== old", arg=first)
    second = page.get_attribute("#post-edit-form", "data-item")
    with page.expect_response(lambda response: response.url.endswith(f"/items/{second}/submit/")):
        page.keyboard.press("Alt+KeyA")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--var", default="var", type=Path, help="the server's var folder (demo-logins.json)")
    args = parser.parse_args()
    logins = {login["username"]: login["password"]
              for login in json.loads((args.var / "demo-logins.json").read_text(encoding="utf-8"))}
    from playwright.sync_api import sync_playwright

    began = time.perf_counter()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        admin = login(browser, args.url, "admin", logins["admin"])
        admin.goto("/translation/new/")
        admin.select_option("#id_instruction_set", label="Sample instructions")
        admin.select_option("#id_languages", list(LANGUAGES))
        admin.check("#field-translators label:has-text('Demo tiny model (prompted)') input")
        admin.check("#id_post_edit")
        name = f"Sample instructions: post-editing {int(time.time())}"
        admin.fill("#id_post_edit_campaign", name)
        with admin.expect_navigation():
            admin.click("#queue-job")
        job_url = admin.url
        if not re.search(r"/translation/\d+/$", job_url):
            sys.exit(f"the job was not queued: {job_url}")
        say("translation job queued", began, job=job_url)
        wait_for(admin, "#post-edit-campaign", seconds=900)
        say("translated by the accelerator lane; post-editing campaign made", began)
        href = admin.get_attribute("#post-edit-campaign", "href")  # the admin's change page of the campaign
        campaign_id = re.search(r"/(\d+)/change/", href).group(1)
        campaign = f"/campaigns/{campaign_id}/annotate/"
        for code, (username, addition) in LANGUAGES.items():
            post_edit_two(login(browser, args.url, username, logins[username]), campaign, addition)
            say(f"post-edited in {code} by {username}", began)
        admin.goto(job_url)
        with admin.expect_navigation():
            admin.click("#export-button")
        wait_for(admin, "#exports a.button", seconds=300)
        rows = admin.locator("#exports tbody tr").first.inner_text()
        say("SFT export succeeded (fast lane)", began, export=rows.split("\n")[0].strip())
        with admin.expect_navigation():
            admin.locator("#exports a.button").first.click()
        admin.select_option("#id_base_model", index=1)  # the demo's one base model, the tiny one
        admin.fill("#id_params", json.dumps(FAST))
        with admin.expect_navigation():
            admin.click("#new-run-form input[type=submit]")
        run_url = admin.url
        say("SFT run queued", began, run=run_url)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            admin.reload()
            body = admin.locator("body").inner_text()
            if re.search(r"\bsucceeded\b", body) or re.search(r"\bfailed\b", body):
                break
            admin.wait_for_timeout(3000)
        status = "succeeded" if re.search(r"\bsucceeded\b", admin.locator("body").inner_text()) else "not succeeded"
        say(f"SFT run {status} (accelerator lane)", began, run=run_url)
        browser.close()
    return 0 if status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
