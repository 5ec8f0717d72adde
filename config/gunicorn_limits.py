"""gunicorn's limits on a request's head, and its answer to a request over them as JSON
with a ``message`` (the API's shape) instead of its own HTML page.

For config/gunicorn.py to import (``from config.gunicorn_limits import
limit_request_field_size, limit_request_fields, limit_request_line``): importing this
module installs the JSON answer. The limits sit above config.http.middleware's, so that a URL
or header a little too long reaches Django and gets its answer (a page for the staff's
pages); only a longer one gets gunicorn's.
"""

import json

from gunicorn import util

# The request line (method, URL, version). gunicorn's Python parser takes at most 8190: a
# larger value is cut to 8190, and 0 lifts the limit altogether (a 16 MB request line
# then takes it 24 s to read, in quadratic time), so 8190 is the most worth setting.
limit_request_line = 8190
# One header line ("Name: value"); 0 would mean 8190 too.
limit_request_field_size = 8190
limit_request_fields = 100

_MESSAGES = {
    414: f"The request line is too long: at most {limit_request_line} characters are served.",
    431: (
        f"The request's headers are too long or too many: at most {limit_request_fields},"
        f" each at most {limit_request_field_size} characters, are served."
    ),
}


def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error (its answer to a request it cannot serve), as JSON."""
    message = _MESSAGES.get(status_int) or (f"{reason}: {mesg}" if mesg else f"{reason}.")
    body = json.dumps({"message": message}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# gunicorn's workers call util.write_error by that name: replacing it is the one way to
# change their error answers, and a worker forked from the arbiter keeps the change.
util.write_error = write_error
