"""Issue 11, permissions and secrets: the admin's permissions everywhere, sign-in lockout, file modes, hashed API
tokens, offline evaluation, the Content-Security-Policy, evaluation outputs for admins only.

The permission matrix reuses tests/test_authorization.py's rows and world, visited by two more people: `bare` (staff,
no permission: the admin refuses them everything) and `member` (staff in the "Crossfeed admin" group, no superuser).
"""

from __future__ import annotations

import io
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Export, JobStatus
from annotation.services.exports import export_folder, export_run
from crossfeed.file_modes import umask_from_env
from crossfeed.permissions import ADMIN_GROUP
from crossfeed.tokens.models import APIToken
from crossfeed.tokens.services import token_digest, token_issue
from tests.conftest import PASSWORD
from tests.test_authorization import MATRIX, Redirect, Row, _row_id, make_world

ROOT = Path(__file__).resolve().parent.parent
User = get_user_model()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(admin_user, annotator, outsider, campaign, items):
    return make_world(admin_user, annotator, outsider, campaign, items)


@pytest.fixture
def bare(db):
    """Staff, and nothing else: the Django admin shows them an empty index and refuses every model."""
    return User.objects.create_user("bare-staff", password=PASSWORD, is_staff=True)


@pytest.fixture
def member(db):
    user = User.objects.create_user("group-staff", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=ADMIN_GROUP))
    return user


# --- 1. the API and the staff pages ask for the admin's permissions ---------------------------------------------

# What `bare` gets where the derived rule below does not say it: like the admin it has no annotator profile, and
# unlike the admin it sees neither drafts nor every item.
BARE_EXCEPTIONS = {
    "GET annotation:annotate": Redirect("home"),
    "GET annotation:annotate (draft)": 404,
    "POST annotation:next (draft)": 404,
    "GET annotation:mine (draft)": 404,
    "GET annotation:revise": 404,
    "GET api-campaign (draft)": 404,
    "GET api-item": 404,
}


def bare_expectation(row: Row):
    """Open to every signed-in person: what the admin gets. Otherwise refused: 403 from the pages and the API; our
    views inside the admin send a person without the permission back to the admin's index, as before."""
    if _row_id(row) in BARE_EXCEPTIONS:
        return BARE_EXCEPTIONS[_row_id(row)]
    if row.expected["admin"] == row.expected["annotator"] == row.expected["outsider"]:
        return row.expected["admin"]
    return Redirect("admin:index") if row.name.startswith("admin:") else 403


def visit(client, world, row: Row):
    url = reverse(row.name, kwargs=row.kwargs(world))
    body = row.body(world) if row.body else None
    if row.method == "GET":
        return client.get(url)
    if row.format is None:
        return client.generic("POST", url) if body is None else client.post(url, body)
    return client.post(url, body, format=row.format)


def check(response, expected, row: Row, who: str) -> None:
    if isinstance(expected, Redirect):
        expected.check(response)
    else:
        assert response.status_code == expected, (_row_id(row), who, response.content[:300])


ROWS = [pytest.param(row, id=_row_id(row)) for row in MATRIX]


@pytest.mark.parametrize("row", ROWS)
def test_it_refuses_staff_without_permissions_what_the_admin_refuses(world, bare, row):
    client = APIClient()
    client.force_login(bare)
    check(visit(client, world, row), bare_expectation(row), row, "staff without permissions")


@pytest.mark.parametrize("row", ROWS)
def test_it_gives_the_crossfeed_admin_group_what_a_superuser_has(world, member, row):
    client = APIClient()
    client.force_login(member)
    check(visit(client, world, row), row.expected["admin"], row, "Crossfeed admin group")


def test_the_refusal_says_which_permission_is_missing_and_who_can_give_it(world, bare):
    client = APIClient()
    client.force_login(bare)
    body = client.get(reverse("api-training-runs")).json()
    assert "training.view_trainingrun" in body["detail"] and ADMIN_GROUP in body["detail"]
    page = client.get(reverse("training:runs"))
    assert page.status_code == 403
    # The admin refuses the same person the same things.
    assert client.get(reverse("admin:training_trainingrun_changelist")).status_code == 403


def test_one_permission_opens_its_endpoint_and_no_other(world, bare):
    from django.contrib.auth.models import Permission

    bare.user_permissions.add(Permission.objects.get(codename="view_trainingrun"))
    bare = User.objects.get(pk=bare.pk)  # a fresh object: permissions are cached on the instance
    client = APIClient()
    client.force_login(bare)
    assert client.get(reverse("api-training-runs")).status_code == 200
    assert client.get(reverse("training:runs")).status_code == 200
    assert client.post(reverse("api-training-runs"), {}, format="json").status_code == 403  # add_trainingrun
    assert client.get(reverse("api-models")).status_code == 403  # view_basemodel


def test_the_group_is_made_by_migrate_and_holds_no_superuser_powers(db):
    group = Group.objects.get(name=ADMIN_GROUP)
    codenames = set(group.permissions.values_list("content_type__app_label", "codename"))
    assert ("training", "add_trainingrun") in codenames and ("annotation", "view_judgment") in codenames
    assert ("auth", "add_user") in codenames
    assert ("auth", "change_user") not in codenames  # it would let a member make themselves a superuser


# --- 7. the HTML outputs of an evaluation run: admins only, as in the API -----------------------------------------


def test_the_outputs_page_is_for_admins_only(world, annotator, admin_user):
    from tests.test_authorization import finished_evaluation

    url = reverse("evaluation:outputs", kwargs=finished_evaluation(world))
    client = APIClient()
    client.force_login(annotator)
    assert client.get(url + "?benchmark=xcopa&language=sw").status_code == 403
    client.force_login(admin_user)
    assert client.get(url + "?benchmark=xcopa&language=sw").status_code == 200


def test_the_results_page_links_the_outputs_only_for_admins(world, annotator, admin_user):
    from tests.test_authorization import finished_evaluation

    url = reverse("evaluation:run", kwargs=finished_evaluation(world))
    client = APIClient()
    client.force_login(annotator)
    assert "/outputs/" not in client.get(url).content.decode()


# --- 2. sign-in lockout ------------------------------------------------------------------------------------------


def _sign_in(client, url: str, username: str, password: str, address: str = "203.0.113.7"):
    data = {"username": username, "password": password}
    if "admin" in url:
        data["next"] = "/admin/"
    return client.post(url, data, REMOTE_ADDR=address)


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_sign_in_and_the_right_one_is_then_refused(client, admin_user, login_url):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, login_url, "boss", "wrong-password").status_code == 200  # the form again
    locked = _sign_in(client, login_url, "boss", "wrong-password")
    assert locked.status_code == 429
    refused = _sign_in(client, login_url, "boss", PASSWORD)
    assert refused.status_code == 429
    text = refused.content.decode()
    assert "Too many failed sign-ins" in text and f"{settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in text
    assert "_auth_user_id" not in client.session
    # Another address still signs in: nobody can lock an annotator out from elsewhere.
    other = _sign_in(client, login_url, "boss", PASSWORD, address="198.51.100.20")
    assert other.status_code == 302
    # An administrator unlocks at once.
    client.logout()
    call_command("axes_reset_username", "boss", stdout=io.StringIO())
    assert _sign_in(client, login_url, "boss", PASSWORD).status_code == 302


def test_a_successful_sign_in_forgets_earlier_typos(client, admin_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "/accounts/login/", "boss", "typo")
    assert _sign_in(client, "/accounts/login/", "boss", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "/accounts/login/", "boss", "typo")
    assert _sign_in(client, "/accounts/login/", "boss", PASSWORD).status_code == 302


def test_the_address_behind_trusted_proxies_is_the_one_they_saw(rf, settings):
    from crossfeed.auth import client_address

    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="127.0.0.1")
    assert client_address(request) == "127.0.0.1"
    settings.CROSSFEED_PROXY_COUNT = 1
    assert client_address(request) == "203.0.113.7"  # not the forged left-most entry


# --- 3. file modes -----------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _manage(var_dir: Path, *args: str, umask: int = 0o022) -> subprocess.CompletedProcess:
    # The parent's umask is the common default (022), as a shell or a service manager gives it.
    env = {key: value for key, value in os.environ.items() if key not in ("CROSSFEED_UMASK", "DATABASE_URL")}
    env["CROSSFEED_VAR_DIR"] = str(var_dir)
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, umask=umask,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


OPEN_AND_REPORT = """
import os, stat
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS probe (value TEXT)")
    cursor.execute("INSERT INTO probe VALUES ('x')")
name = str(settings.DATABASES["default"]["NAME"])
for suffix in ("", "-wal", "-shm"):
    print(suffix or "db", oct(stat.S_IMODE(os.stat(name + suffix).st_mode)))
"""


def test_a_new_database_and_its_wal_are_the_owners_alone(tmp_path):
    var_dir = tmp_path / "var"
    _manage(var_dir, "migrate", "--noinput", "-v0")
    report = _manage(var_dir, "shell", "-c", OPEN_AND_REPORT).stdout
    modes = dict(re.findall(r"^(db|-wal|-shm) (0o[0-7]+)$", report, re.M))
    assert modes == {"db": "0o600", "-wal": "0o600", "-shm": "0o600"}, report
    assert _mode(var_dir) == 0o700
    assert _mode(var_dir / "secret_key") == 0o600


def test_a_database_made_before_is_narrowed_at_start(tmp_path):
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    database = var_dir / "crossfeed.sqlite3"
    sqlite3.connect(database).close()
    database.chmod(0o644)
    _manage(var_dir, "check")
    assert _mode(database) == 0o600


def test_export_files_and_uploads_are_the_owners_alone(settings, tmp_path, campaign, items, annotator,
                                                        admin_user):
    from annotation.services.judgments import judgment_submit
    from tests.conftest import new_key, ranks_for

    settings.MEDIA_ROOT = tmp_path / "media"
    judgment_submit(annotator=annotator, item_id=items[0].id, ranks=ranks_for(items[0]), idempotency_key=new_key())
    export = export_run(export_id=Export.objects.create(campaign=campaign, min_judgments=1).id)
    assert export.status == JobStatus.SUCCEEDED, export.error
    folder = export_folder(export)
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert files and {oct(_mode(path)) for path in files} == {"0o600"}
    assert _mode(folder) == 0o700
    client = APIClient()
    client.force_login(admin_user)
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("sft.jsonl", b'{"messages": [{"role": "user", "content": "Habari?"}]}\n')
    response = client.post(reverse("api-training-uploads"), {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    assert _mode(Path(response.json()["path"])) == 0o600


def test_a_umask_that_opens_files_to_everyone_is_refused(monkeypatch):
    monkeypatch.setenv("CROSSFEED_UMASK", "022")
    with pytest.raises(ValueError, match="every local user"):
        umask_from_env()
    monkeypatch.setenv("CROSSFEED_UMASK", "027")
    assert umask_from_env() == 0o027


# --- 4. API tokens as hashes -------------------------------------------------------------------------------------


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _database_text() -> str:
    """Every row of every table as text: where a key could hide, in any column."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - our own table names
            rows += [repr(row) for row in cursor.fetchall()]
    return "\n".join(rows)


def test_the_database_holds_no_key_and_the_annotator_token_works(admin_user, campaign):
    response = _token_client(token_issue(user=admin_user)).post(
        reverse("api-annotators"),
        {"username": "swahili9", "password": PASSWORD, "native_languages": ["sw"]}, format="json")
    assert response.status_code == 201, response.content
    key = response.json()["token"]
    assert len(key) == 40 and key not in _database_text()
    assert token_digest(key) in _database_text()
    assert _token_client(key).get(reverse("api-languages")).status_code == 200


def test_drf_create_token_prints_a_new_working_token_and_r_revokes_the_old(admin_user, settings):
    settings.TOKEN_CACHE_SECONDS = 0  # a revoked token fails at once (with the cache: after at most that long)

    def create(*flags) -> str:
        out = io.StringIO()
        call_command("drf_create_token", *flags, "boss", stdout=out)
        found = re.fullmatch(r"Generated token ([0-9a-f]{40}) for user boss\n", out.getvalue())
        assert found, out.getvalue()
        return found.group(1)

    first = create()
    second = create()
    assert first != second and first not in _database_text()
    for key in (first, second):
        assert _token_client(key).get(reverse("api-training-runs")).status_code == 200
    third = create("-r")
    assert _token_client(third).get(reverse("api-training-runs")).status_code == 200
    assert _token_client(first).get(reverse("api-training-runs")).status_code == 401
    assert APIToken.objects.filter(user=admin_user).count() == 1


def test_create_annotator_prints_a_working_token(db):
    out = io.StringIO()
    call_command("create_annotator", "amina7", "--native", "sw", "--password", PASSWORD, stdout=out)
    key = re.search(r"^API token: ([0-9a-f]{40})$", out.getvalue(), re.M).group(1)
    assert key not in _database_text()
    assert _token_client(key).get(reverse("api-languages")).status_code == 200


def test_an_unknown_token_is_refused(db):
    response = _token_client("0" * 40).get(reverse("api-languages"))
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db(transaction=True)
def test_a_token_from_before_the_upgrade_keeps_working(django_user_model):
    """An upgraded database has DRF's authtoken table with plain keys: the migration hashes them and empties it."""
    user = django_user_model.objects.create_user("old-client", password=PASSWORD)
    legacy_key = "3f1c0ad2b5e84e0f9a1b2c3d4e5f60718293a4b5"
    call_command("migrate", "apitokens", "0001", verbosity=0)
    with connection.cursor() as cursor:
        # DRF's table as its migrations made it, on either engine.
        created = "timestamp with time zone" if connection.vendor == "postgresql" else "datetime"
        cursor.execute(f"CREATE TABLE authtoken_token (key varchar(40) NOT NULL PRIMARY KEY, created {created} NOT "
                       "NULL, user_id integer NOT NULL UNIQUE REFERENCES auth_user (id))")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)",
                       [legacy_key, "2026-01-02 03:04:05.000000", user.pk])
    try:
        call_command("migrate", "apitokens", verbosity=0)
        response = _token_client(legacy_key).get(reverse("api-languages"))
        assert response.status_code == 200, response.content
        assert legacy_key not in _database_text()
        assert APIToken.objects.get(user=user).created.year == 2026
        if connection.vendor == "sqlite":  # nor in the file's free pages (the migration overwrites deleted rows)
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            name = str(connection.settings_dict["NAME"])
            for path in (Path(name), Path(name + "-wal")):
                assert not path.exists() or legacy_key.encode() not in path.read_bytes(), path
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS authtoken_token")


# --- 5. evaluation loads models offline --------------------------------------------------------------------------


def test_evaluation_refuses_a_hub_model_at_once_without_touching_the_network(tmp_path):
    """A hub id as the base model: a clear error, and not one connection to the hub (HF_ENDPOINT points at a local
    socket that counts them), with none of the offline switches set in the environment."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    connections = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                peer, _ = listener.accept()
            except TimeoutError:
                continue
            connections.append(peer)
            peer.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    env = {key: value for key, value in os.environ.items()
           if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{listener.getsockname()[1]}", HF_HOME=str(tmp_path / "hf"),
               HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5")
    script = ("from evaluation.inference import ModelSpec, load_model\n"
              "try:\n    load_model(ModelSpec('crossfeed-test/not-on-this-machine'), device='cpu')\n"
              "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ModelNotLocal"), done.stdout + done.stderr[-2000:]
    assert "not a folder on this machine" in done.stdout and "never downloads" in done.stdout
    assert connections == []


# --- 6. Content-Security-Policy ----------------------------------------------------------------------------------


def test_every_page_carries_a_strict_policy(client, annotator):
    client.force_login(annotator)
    for url in ("/accounts/login/", "/", "/evaluation/", "/api/docs/", "/admin/login/"):
        policy = client.get(url)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
        assert directives["default-src"] == "'self'", (url, policy)
        assert "unsafe" not in policy and "script-src" not in policy and "style-src" not in policy
        assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> block"),
    (re.compile(r"\sstyle=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+=", re.I), "an inline event handler"),
    (re.compile(r"\bhx-on", re.I), "an hx-on handler (htmx evaluates it as code)"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_no_template_has_inline_code_or_styles():
    # The policy refuses these in the browser; finding them here says where. (A |json_script block is data.)
    found = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = template.read_text(encoding="utf-8")
        for pattern, what in INLINE:
            found += [f"{template.relative_to(ROOT)}: {what}" for _ in pattern.finditer(text)]
    assert found == []


def test_the_swagger_page_loads_its_start_up_script_as_a_file(client):
    page = client.get("/api/docs/").content.decode()
    script = re.search(r'<script src="([^"]*script=[^"]*)"', page)
    assert script, page
    response = client.get(script.group(1).replace("&amp;", "&"))
    assert response.status_code == 200 and "SwaggerUIBundle" in response.content.decode()
