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
# Limits on a request's head a little above config.http.middleware's, so that Django answers
# a URL or header that is too long; importing them also makes gunicorn's own answer to
# anything longer JSON with a message (config/gunicorn_limits.py).
from config.gunicorn_limits import (  # noqa: E402, F401
    limit_request_field_size,
    limit_request_fields,
    limit_request_line,
)
