import io

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Export, JobStatus
from annotation.services.exports import export_run


@pytest.mark.django_db(transaction=True)
def test_it_queues_an_export_after_commit_and_reports_it(api, admin_user, judged):
    from django_tasks_db.models import DBTaskResult

    client = api(admin_user)
    response = client.post(f"/api/v1/campaigns/{judged.id}/exports/",
                           {"format": "parquet", "pairs": "best_vs_rest", "min_judgments": 2}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    task = DBTaskResult.objects.get()
    assert (task.queue_name, task.args_kwargs["args"]) == ("exports", [body["id"]])
    # The real worker, once: it claims the task and runs the export.
    call_command("db_worker", "--batch", "--queue-name", "exports", stdout=io.StringIO(), stderr=io.StringIO())
    detail = client.get(f"/api/v1/exports/{body['id']}/").json()
    assert detail["status"] == "succeeded" and detail["rows"] == 10
    assert detail["per_language"]["ta"]["rows"] == 6
    assert [f["name"] for f in detail["files"]][-1] == "README.md"
    first = detail["files"][0]
    assert first["name"].endswith(".parquet") and len(first["sha256"]) == 64
    download = client.get(first["url"])
    assert download.status_code == 200
    content = b"".join(download.streaming_content)
    import hashlib

    assert hashlib.sha256(content).hexdigest() == first["sha256"]


def test_filters_matching_nothing_answer_400_and_store_nothing(api, admin_user, judged):
    response = api(admin_user).post(f"/api/v1/campaigns/{judged.id}/exports/", {"languages": ["yo"]},
                                    format="json")
    assert response.status_code == 400 and "min_judgments" in response.json()
    assert not Export.objects.exists()


def test_annotators_cannot_export_or_download(api, admin_user, judged, annotator):
    export = Export.objects.create(campaign=judged)
    client = api(annotator)
    assert client.post(f"/api/v1/campaigns/{judged.id}/exports/", {}, format="json").status_code == 403
    assert client.get(f"/api/v1/exports/{export.id}/").status_code == 403
    assert client.get(f"/api/v1/exports/{export.id}/files/train.jsonl").status_code == 403
    assert api().get(f"/api/v1/exports/{export.id}/files/train.jsonl").status_code in (401, 403)


def test_downloads_only_serve_files_the_export_wrote(api, admin_user, judged):
    client = api(admin_user)
    export = Export.objects.create(campaign=judged, progress_total=5)
    export = export_run(export_id=export.id)
    assert export.status == JobStatus.SUCCEEDED
    for name in ["../../secret_key", "..%2F..%2Fsecret_key", "other.jsonl", "train.jsonl%00"]:
        assert client.get(f"/api/v1/exports/{export.id}/files/{name}").status_code == 404, name
    assert client.get(f"/api/v1/exports/{export.id}/files/README.md").status_code == 200


def test_retry_through_the_api(api, admin_user, judged):
    export = Export.objects.create(campaign=judged, status=JobStatus.FAILED, error="boom")
    response = api(admin_user).post(f"/api/v1/exports/{export.id}/retry/")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert api(admin_user).post(f"/api/v1/exports/{export.id}/retry/").status_code == 409


def test_export_preferences_command(judged):
    out = io.StringIO()
    call_command("export_preferences", judged.name, "--pairs", "best_vs_worst", "--test-fraction", "0", stdout=out,
                 verbosity=0)
    assert "5 rows" in out.getvalue() and "train.jsonl  5 rows  sha256" in out.getvalue()
    with pytest.raises(CommandError, match="min_judgments"):
        call_command("export_preferences", judged.name, "--min-judgments", "9", stdout=out, verbosity=0)


def test_admin_pages_for_export_and_quality(client, admin_user, judged):
    client.force_login(admin_user)
    page = client.get(f"/admin/annotation/campaign/{judged.id}/quality/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "quality-chart" in text and "ta0: 3" in text
    page = client.post(f"/admin/annotation/campaign/{judged.id}/export/",
                       {"kind": "preference", "format": "jsonl", "pairs": "all", "min_judgments": 2,
                        "min_agreement": 0, "languages": "ta", "test_fraction": 0.1, "seed": 0})
    export = Export.objects.get()
    assert page.status_code == 302 and export.languages == ["ta"]
    assert client.get(f"/admin/annotation/export/{export.id}/change/").status_code == 200
    page = client.post(f"/admin/annotation/campaign/{judged.id}/export/",
                       {"kind": "preference", "format": "jsonl", "pairs": "all", "min_judgments": 2,
                        "min_agreement": 0, "languages": "xx-nope", "test_fraction": 0.1, "seed": 0})
    assert page.status_code == 200 and "unknown language" in page.content.decode()
