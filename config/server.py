"""The production server: granian's WSGI interface serving ``config.wsgi``, as `make run`
(config/supervisord.conf), the tests that start a real server and `make bench` run it.

``python -m config.server [granian options]`` replaces itself with granian (the same
process, so that supervisord's SIGTERM reaches granian itself), configured through
granian's own environment variables: HOST, PORT and WEB_CONCURRENCY give its address and
workers, the rest defaults to SETTINGS below. Any ``GRANIAN_*`` variable already set, and
any option on the command line, wins over these defaults.

Static files are not granian's: WhiteNoise serves them from Django, with their
compressed variants and far-future caching of hashed names.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

APPLICATION = "config.wsgi:application"

# Defaults for granian's settings (`granian --help` names each variable).
SETTINGS = {
    "GRANIAN_INTERFACE": "wsgi",
    # Threads per worker running Django. A query waiting for its write holds its thread for
    # up to READ_MODEL_MAX_WAIT: with one, four such queries stalled both workers (lookups
    # beside them fell to a third, p99 5-7 s); with four they did not, for at most ~10 % of
    # plain lookups and with slightly more allocates (README, "Performance").
    "GRANIAN_BLOCKING_THREADS": "4",
    "GRANIAN_WEBSOCKETS": "false",
    # A worker that dies (killed, out of memory) is replaced, as gunicorn's arbiter did;
    # granian stops altogether only when a new one dies again within 5.5 s of starting.
    "GRANIAN_RESPAWN_FAILED_WORKERS": "true",
    # On SIGTERM workers finish their requests; one still busy after 30 s is killed.
    "GRANIAN_WORKERS_KILL_TIMEOUT": "30",
    "GRANIAN_LOG_ACCESS_ENABLED": "true",
}


def environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with granian's settings added where it does not name them already."""
    settings = {
        **SETTINGS,
        "GRANIAN_HOST": base.get("HOST", "127.0.0.1"),
        "GRANIAN_PORT": base.get("PORT", "8000"),
        "GRANIAN_WORKERS": base.get("WEB_CONCURRENCY", "2"),
    }
    return {**settings, **base}


def command(*options: str) -> list[str]:
    """The command line that serves the project with granian and ``options``."""
    return [sys.executable, "-m", "granian", *options, APPLICATION]


def main() -> None:
    """Become granian, serving the project."""
    arguments = command(*sys.argv[1:])
    os.execve(arguments[0], arguments, environment(os.environ))


if __name__ == "__main__":
    main()
