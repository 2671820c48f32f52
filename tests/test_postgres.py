"""The concurrency and service tests again, on a private PostgreSQL cluster (tests/postgres.py).

They run in a child pytest because the database is chosen when settings load (DATABASE_URL), once per process.
The child runs only the files named here, so it cannot come back to this file; an environment flag makes sure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.postgres import PostgresUnavailable, find_server_binaries, throwaway_cluster, unprivileged_runner

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
CHILD_FLAG = "CROSSFEED_POSTGRES_CHILD"
CHILD_TIMEOUT_S = 900
VENDOR_TEST = "test_it_runs_on_the_expected_database"


def child_test_files() -> list[str]:
    services = (ROOT / "tests/annotation").glob("test_services_*.py")
    # test_round_trips: the statements per next / submit, counted on the wire (what PostgreSQL's throughput hangs on);
    # test_postgres_backend: the health check of crossfeed.db.postgresql.
    return ["tests/annotation/test_concurrency.py", "tests/annotation/test_round_trips.py",
            "tests/test_postgres_backend.py", *sorted(path.relative_to(ROOT).as_posix() for path in services)]


def test_it_passes_the_concurrency_and_service_tests_on_postgresql(tmp_path):
    run_child(tmp_path, child_test_files())


def test_it_passes_the_concurrency_tests_with_a_connection_pool(tmp_path):
    """DB_POOL=1 (psycopg_pool through Django, for threaded workers): threads share a process's pool."""
    run_child(tmp_path, ["tests/annotation/test_concurrency.py", "tests/annotation/test_round_trips.py"],
              {"DB_POOL": "1"})


def run_child(tmp_path, files: list[str], extra_env: dict[str, str] | None = None) -> None:
    """Run the test files in a child pytest against a throwaway cluster; fail with its output unless all passed."""
    if os.environ.get(CHILD_FLAG):
        pytest.skip("already inside the PostgreSQL child run")
    try:
        find_server_binaries()
        unprivileged_runner()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    report = tmp_path / "report.xml"
    try:
        with throwaway_cluster() as database_url:
            env = {key: value for key, value in os.environ.items()
                   if not key.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST"))}
            env.update({
                "DATABASE_URL": database_url,
                "CROSSFEED_VAR_DIR": str(tmp_path / "var"),
                "CROSSFEED_EXPECT_VENDOR": "postgresql",
                CHILD_FLAG: "1",
                **(extra_env or {}),
            })
            command = [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider",
                       f"--junitxml={report}"]
            child = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                   timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        # TimeoutExpired keeps the partial output as bytes, whatever `text` said.
        parts = [part if isinstance(part, bytes) else part.encode() for part in (exc.stdout, exc.stderr) if part]
        partial = b"".join(parts).decode(errors="replace")
        pytest.fail(f"the child pytest ran past {CHILD_TIMEOUT_S} s (a deadlock?):\n{partial}")
    except PostgresUnavailable as exc:
        # The binaries exist but the cluster did not start: that is a broken set-up, not a reason to skip.
        pytest.fail(f"the throwaway PostgreSQL cluster did not start:\n{exc}")
    output = child.stdout + child.stderr
    assert child.returncode == 0, f"{' '.join(command)} exited with {child.returncode}:\n{output}"
    # Exit 0 alone would also pass if the vendor check were skipped or deselected: read the report.
    cases = {case.get("name"): case for case in ET.parse(report).iter("testcase")}  # noqa: S314 - our child's report
    assert VENDOR_TEST in cases, f"{VENDOR_TEST} did not run in the child:\n{output}"
    assert not list(cases[VENDOR_TEST]), f"{VENDOR_TEST} did not pass cleanly:\n{output}"
