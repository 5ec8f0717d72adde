"""gunicorn settings for `make run`; it also runs the read side's watcher
(`manage.py refresh_views --watch`) beside the workers: with READ_MODEL_REFRESH=async
it refreshes after writes, and in either mode it rebuilds the base views in the
background once their deltas grow."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads per worker (gthread): a query waiting for its write to reach the read
# models (up to READ_MODEL_MAX_WAIT) holds one thread, not a whole worker.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
accesslog = "-"
forwarded_allow_ips = "127.0.0.1"

_watcher: subprocess.Popen | None = None


def on_starting(server) -> None:
    global _watcher
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    server.log.info("starting the read side's watcher: refresh_views --watch")
    _watcher = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), "refresh_views", "--watch"]
    )


def on_exit(server) -> None:
    if _watcher is not None:
        _watcher.terminate()
        _watcher.wait(timeout=30)
