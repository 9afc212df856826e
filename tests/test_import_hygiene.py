"""The web process never loads ML libraries, the Celery worker app, or a guessed broker address."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "torch",
    "transformers",
    "trl",
    "vllm",
    "datasets",
    "sklearn",
    "sentence_transformers",
    "llama_cpp",
    "crowdkit",
)


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_web_app_leaves_ml_libraries_and_the_worker_unloaded() -> None:
    # In a fresh interpreter: other tests in this process have imported torch and friends.
    code = f"""
import sys
import app.main
from app.main import create_app
from app.jobs import registry
create_app()
registry.load()  # the domains' job modules, which the web process imports to enqueue
heavy = {HEAVY!r}
print(",".join(m for m in sorted(sys.modules) if m.split(".")[0] in heavy or m.startswith("worker")))
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_probe_would_see_a_heavy_import() -> None:
    done = run_python("import sys, sklearn; print('sklearn' in sys.modules)")
    if done.returncode != 0:  # sklearn is not installed here: use another heavy one
        done = run_python("import sys, datasets; print('datasets' in sys.modules)")
    assert done.stdout.strip() == "True", done.stderr


def test_the_celery_app_needs_a_configured_broker() -> None:
    done = run_python("import worker.celery_app", TANDEM_REDIS_URL=None)
    assert done.returncode != 0
    assert "TANDEM_REDIS_URL is not set" in done.stderr
    assert "127.0.0.1:6379" not in done.stderr
