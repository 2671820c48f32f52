"""What a Django process loads when it starts: every web worker, task worker and `manage.py` command pays for it, and
so do the tests that start them. rouge_score's NLTK (with scikit-learn, SciPy and pandas behind it) once took 3 of
a `manage.py` command's 4 seconds; torch and transformers are for the worker's jobs, imported where they run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("nltk", "sklearn", "scipy", "pandas", "rouge_score", "torch", "transformers", "peft", "trl", "datasets")
STARTUP = """
import json, sys
import django
django.setup()
from django.core.handlers.wsgi import WSGIHandler
from django.urls import get_resolver
WSGIHandler()  # the middleware
get_resolver().url_patterns  # every app's URLs, views and forms
from django.contrib import admin
admin.autodiscover()
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in %r)))
"""


def test_a_django_process_starts_without_the_heavy_libraries(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crossfeed.settings", "CROSSFEED_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", STARTUP % (HEAVY,)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert {name.split(".")[0] for name in loaded} == set(), f"imported at start-up: {loaded[:20]}"
