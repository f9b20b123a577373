# Mamori — one command each: `make run` (demo server), `make test` (whole suite), `make install`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
PO := src/mamori/locale/ja/LC_MESSAGES/django.po
MO := $(PO:.po=.mo)
PG_URL ?= postgres://postgres@127.0.0.1:5432/mamori
PYTEST_ARGS ?=
# The suite runs on both cores (pytest-xdist: each worker has its own test database);
# PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# System packages: Pango and Japanese fonts for PDFs, gettext for translations, Chromium for
# the browser tests, rpm for the agent's RPM database tests, lynis and debsecan for the
# side-by-side comparisons, nginx, openssl and systemd (systemd-analyze) for the deployment
# test (deploy/). Installed with apt-get only when missing.
RUN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-ipaexfont-gothic gettext
TEST_PACKAGES := $(RUN_PACKAGES) chromium rpm lynis debsecan nginx openssl systemd poppler-utils
# The load test's verifiers: a load generator in C, so the clients leave the 2 cores to the stack.
BENCH_PACKAGES := wrk

.PHONY: install run test lint check-django test-sqlite test-postgres sysdeps-run sysdeps-test services bench agent \
	bench-matching bench-import bench-fleet bench-lynis bench-supplychain bench-load \
	bench-earlywarning bench-earlywarning-kev bench-reporting

install: $(STAMP) $(MO)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
		|| { echo "Mamori needs Python 3.11 as '$(PYTHON)' (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' 2> >(grep -v "is ignored: it is neither" >&2)
	@touch $(STAMP)

$(MO): $(PO)
	@command -v msgfmt >/dev/null || $(MAKE) --no-print-directory sysdeps-run
	msgfmt --check -o $@ $<

define apt_install
	@missing=""; for package in $(1); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		sudo_cmd=""; [ "$$(id -u)" = 0 ] || sudo_cmd="sudo"; \
		$$sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo_cmd apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

sysdeps-run:
	$(call apt_install,$(RUN_PACKAGES))

sysdeps-test:
	$(call apt_install,$(TEST_PACKAGES))

# PostgreSQL and Redis for the suite: started here when they are not running.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
		for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { mkdir -p /var/lib/redis /var/log/redis; \
		redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log; \
		for i in $$(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done; }

# The local instance: a key kept in var/secret_key and var/instance.env, which every `mamori`
# command run from this checkout reads (variables in the environment take precedence).
INSTANCE := var/instance.env

run: install sysdeps-run
	@mkdir -p var
	@test -s var/secret_key || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(48))" > var/secret_key
	@chmod 600 var/secret_key
	@printf '%s\n' \
		'# Written by `make run` for this checkout (rewritten on every run): a local instance on' \
		'# loopback over plain HTTP. The environment overrides any line; see README, Configuration.' \
		'SECRET_KEY_FILE=$(CURDIR)/var/secret_key' \
		'ALLOWED_HOSTS=127.0.0.1,localhost' \
		'MAMORI_HTTPS=0' \
		'MAMORI_SITE_URL=http://127.0.0.1:$(PORT)' > $(INSTANCE)
	$(BIN)/mamori migrate --noinput
	$(BIN)/mamori catalogue load
	$(BIN)/mamori demo
	exec $(BIN)/mamori serve --port $(PORT)

# Settings for the checks and the suite: production mode with a throwaway key.
TEST_ENV := SECRET_KEY=test-only-key-0123456789abcdefghijklmnopqrstuvwxyz ALLOWED_HOSTS=testserver,127.0.0.1,localhost

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

check-django: install
	$(TEST_ENV) MAMORI_VAR_DIR=var/check $(BIN)/mamori check --fail-level WARNING
	$(TEST_ENV) MAMORI_VAR_DIR=var/check $(BIN)/mamori makemigrations --check --dry-run

# Tests of one set-up run in the pass of its database: the embedded default (SQLite, a broker in
# files, the database cache) in the SQLite pass, the scale-out one (Redis, gunicorn, nginx) in
# the PostgreSQL pass (markers `embedded` and `scale_out`).
test-sqlite: install services
	rm -rf var/test-sqlite
	$(TEST_ENV) MAMORI_VAR_DIR=var/test-sqlite DATABASE_URL=sqlite:///$(CURDIR)/var/test-sqlite/mamori.sqlite3 \
		$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not scale_out and not strict_database" $(PYTEST_ARGS)

# On PostgreSQL only the tests that use a database: the others proved their point on SQLite.
# The browser journeys run in the SQLite pass only: they drive the pages of the embedded default
# (what `make run` serves); what they store is proved on PostgreSQL by the page, API and service
# tests of the same flows. The authorization matrices run in full on SQLite and, on PostgreSQL,
# for three roles that take every scoping query through it (tests/conftest.py); the API fuzzing
# runs on PostgreSQL only (marker `strict_database`: it refuses what SQLite stores quietly).
test-postgres: install services
	rm -rf var/test-postgres
	$(TEST_ENV) MAMORI_VAR_DIR=var/test-postgres DATABASE_URL=$(PG_URL) MAMORI_DATABASE_TESTS_ONLY=1 \
		$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not embedded and not browser" $(PYTEST_ARGS)

test: install sysdeps-test services lint check-django
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

# BENCH_ARGS=--reuse measures again on the data of the previous run (see bench/README.md).
BENCH_ARGS ?=
bench: install services
	$(TEST_ENV) MAMORI_VAR_DIR=var/bench DATABASE_URL=postgres://postgres@127.0.0.1:5432/mamori_bench \
		$(BIN)/python bench/scheme_core.py $(BENCH_ARGS)

# Technical verification (bench/README.md): matching and debsecan side by side (no database),
# importing 100,000 OSV records, the 10,000-host fleet re-match (15 minutes; drops and recreates
# mamori_bench_fleet) and the Lynis comparison (as root).
bench-matching: install sysdeps-test
	$(BIN)/python bench/matching.py
	$(BIN)/python bench/debsecan_compare.py

bench-import: install services
	$(TEST_ENV) MAMORI_VAR_DIR=var/bench-adv/var DATABASE_URL=postgres://postgres@127.0.0.1:5432/mamori_bench_adv \
		$(BIN)/python bench/advisories_import.py

bench-fleet: install services
	$(TEST_ENV) MAMORI_VAR_DIR=var/bench-fleet/var DATABASE_URL=postgres://postgres@127.0.0.1:5432/mamori_bench_fleet \
		$(BIN)/python bench/fleet_rematch.py $(BENCH_ARGS)

# Early warning (bench/README.md): a new KEV entry on the 10,000-host fleet of bench-fleet, from
# the import's commit to every alert stored; drops and recreates mamori_bench_ewsoft.
bench-earlywarning-kev: install services
	$(TEST_ENV) MAMORI_VAR_DIR=var/bench-ewsoft/var DATABASE_URL=postgres://postgres@127.0.0.1:5432/mamori_bench_ewsoft \
		$(BIN)/python bench/earlywarning_kev.py $(BENCH_ARGS)

# Board reporting (bench/README.md): two years of daily samples of 600 organisations (9.6 M rows,
# COPY), the sector dashboard, a board pack, the nightly sampling; drops and recreates
# mamori_bench_reporting (BENCH_ARGS=--reuse measures again on it, sampling the next day).
bench-reporting: install services
	$(TEST_ENV) MAMORI_VAR_DIR=var/bench-reporting DATABASE_URL=postgres://postgres@127.0.0.1:5432/mamori_bench_reporting \
		$(BIN)/python bench/reporting.py $(BENCH_ARGS)

bench-lynis: install sysdeps-test
	$(BIN)/python bench/lynis_compare.py

# Supply-chain analysis (bench/README.md): the 100,000-node sector graph and the dense graph
# through `mamori supplychain analyse` (no database); BENCH_ARGS=--dense-only for the latter alone.
bench-supplychain: install
	$(BIN)/python bench/supplychain_analysis.py $(BENCH_ARGS)

# Early warning on PostgreSQL: a 1,000,000-row report against 100,000 prefixes and 20,000
# domains, the in-memory matching alone, and 5,000 webhook deliveries to a local receiver.
bench-earlywarning: install services
	$(BIN)/python bench/earlywarning_ingest.py $(BENCH_ARGS)
	$(BIN)/python bench/earlywarning_matching.py
	$(BIN)/python bench/earlywarning_webhooks.py

# The deployed stack (deploy/: nginx, gunicorn, Celery worker and beat) under load on loopback
# (bench/README.md): 100 clients for 60 s; drops and recreates mamori_bench_load.
# BENCH_ARGS="--clients 20 --duration 15" for a short run, "--chaos" to kill and restart
# workers, Redis and PostgreSQL meanwhile (shared servers: as root, and nothing else using them).
bench-load: install sysdeps-test services
	$(call apt_install,$(BENCH_PACKAGES))
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/mamori_bench_load \
		$(BIN)/python bench/load.py $(BENCH_ARGS)

# The host agent as one file to copy onto a host (Python >= 3.9, standard library only):
# `python3 mamori-agent.pyz collect`. Built from a temporary copy of src/mamori_agent with the
# standard zipapp module; AGENT_PYZ=... builds elsewhere (the tests do).
AGENT_PYZ ?= dist/mamori-agent.pyz
agent:
	@set -euo pipefail; staging=$$(mktemp -d); trap 'rm -rf "$$staging"' EXIT; \
	cp -R src/mamori_agent "$$staging/mamori_agent"; \
	find "$$staging" -name __pycache__ -prune -exec rm -rf {} +; \
	printf '%s\n' 'import sys' 'from mamori_agent.cli import main' 'sys.exit(main())' > "$$staging/__main__.py"; \
	mkdir -p "$$(dirname "$(AGENT_PYZ)")"; \
	$(PYTHON) -m zipapp "$$staging" --output "$(AGENT_PYZ).tmp" --python '/usr/bin/env python3' --compress; \
	chmod 0755 "$(AGENT_PYZ).tmp"; \
	mv "$(AGENT_PYZ).tmp" "$(AGENT_PYZ)"; \
	echo "built $(AGENT_PYZ)"
