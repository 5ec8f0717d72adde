# Quartermaster's commands. `make run` serves the application, `make test` runs the tests.
# Both start the project's private PostgreSQL (in .pgdata/) when DATABASE_URL is unset.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WEB_CONCURRENCY ?= 2
DEMO_ORDERS ?= 24

export HOST PORT WEB_CONCURRENCY

.PHONY: install run dev test lint format migrate demo stop-db soak bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# A SECRET_KEY made once for this checkout, kept out of git.
.env:
	@echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "wrote a new SECRET_KEY into .env"

install: $(VENV)/.installed .env

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo --orders $(DEMO_ORDERS) --demo-user
	$(PY) manage.py refresh_views

run: demo
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "Quartermaster on http://$(HOST):$(PORT)/ (granian, $(WEB_CONCURRENCY) workers, and the read side's watcher)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(VENV)/bin/supervisord --configuration config/supervisord.conf

# Django's development server, with no watcher beside it: each write refreshes its read
# models itself unless READ_MODEL_REFRESH says otherwise.
dev: demo
	DEBUG=true READ_MODEL_REFRESH=$${READ_MODEL_REFRESH:-sync} $(PY) manage.py runserver $(HOST):$(PORT)

# The browser tests drive Debian's Chromium (Playwright's own browser download does
# not work offline); install it when missing and we may.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "The browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; \
	fi

# Two pytest-xdist workers, one per core: each has a test database of its own.
TEST_WORKERS ?= 2

test: install $(CHROMIUM)
	$(PY) -m pytest -n $(TEST_WORKERS)

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Stop the private PostgreSQL server and its standbys (they keep running between commands
# otherwise).
stop-db: install
	$(PY) -m config.localdb stop

# A 60-second mixed load against granian and the watcher, then its checks (SOAK_SECONDS,
# SOAK_CLIENTS to change); prints requests/s and error counts.
soak: install
	$(PY) -m bench.soak

# Benchmark figures at 10k, 100k and 1M orders, one table (BENCH_SIZES=10000,100000 or
# BENCH_QUICK=1 to skip 1M); also written to bench/results.json. It loads with Debian's
# wrk (installed when missing and we may) and pgbench (pgserver's own, else the system's).
bench: install
	@command -v wrk >/dev/null || if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	else \
		echo "make bench needs Debian's wrk: sudo apt-get install wrk" >&2; exit 1; \
	fi
	$(PY) -m bench.bench
