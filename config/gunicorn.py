"""gunicorn settings for `make run` (config/supervisord.conf runs it beside the read
side's watcher)."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads per worker (gthread): a query waiting for its write to reach the read
# models (up to READ_MODEL_MAX_WAIT) holds one thread, not a whole worker.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
accesslog = "-"
forwarded_allow_ips = "127.0.0.1"
