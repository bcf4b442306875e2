# Imewe developer commands. `make run` and `make test` are the two that matter; both set up
# everything they need first (virtualenv, pinned requirements, npm assets).
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
# `make run`'s time compression: machine seconds per real second (360: an estimated hour of
# machining runs in 10 s, and its measured energy is the estimate / 360). 1: real time.
DEMO_TIME_SCALE ?= 360

# OctoPrint (with its virtual printer) for the printer tests, in a venv of its own: its pins
# clash with the project's. Tests find it through OCTOPRINT_VENV.
OCTOPRINT_VENV ?= var/octoprint-venv
export OCTOPRINT_VENV

.PHONY: setup octoprint run fault test lint typecheck check-deploy schema clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

var/secret_key:
	mkdir -p var
	$(PY) -c "import secrets; print(secrets.token_urlsafe(64))" > $@

setup: $(VENV)/.installed node_modules/.installed

$(OCTOPRINT_VENV)/.installed: requirements-octoprint.txt
	$(PY) -m venv $(OCTOPRINT_VENV)
	$(OCTOPRINT_VENV)/bin/pip install --quiet -r requirements-octoprint.txt
	touch $@

octoprint: $(OCTOPRINT_VENV)/.installed

# The embedded default: SQLite, in-memory channel layer, Celery on the filesystem transport.
run: setup var/secret_key
	@export SECRET_KEY="$$(cat var/secret_key)" DEBUG=1 DATABASE_URL= REDIS_URL= \
	  DEMO_TIME_SCALE=$(DEMO_TIME_SCALE) IMEWE_PLATFORM_URL=http://127.0.0.1:$(PORT) && \
	$(BIN)/python manage.py migrate --noinput -v 0 && \
	$(BIN)/python manage.py seed_demo && \
	$(BIN)/python manage.py demo_edge_config --managed --token-file var/gateway-token --state-dir var/edge-gateway && \
	echo "" && \
	echo "  Imewe is starting at http://127.0.0.1:$(PORT)/  (Ctrl+C stops it)" && \
	echo "  Demo logins (password = <role>-demo-2026): admin@imewe.test designer@imewe.test" && \
	echo "  engineer@imewe.test viewer@imewe.test vendor@imewe.test operator@imewe.test" && \
	echo "  The admin is asked to enrol two-factor authentication at first sign-in." && \
	echo "  API docs: http://127.0.0.1:$(PORT)/api/docs/   E-mails print to this console;" && \
	echo "  the access log goes to var/access.log." && \
	echo "  Simulated machines: Mill-01, Mill-02, Printer-01, Printer-02 stream through the managed" && \
	echo "  edge gateway Hall A (Live; vendor portal: Gateways, Rollouts); they idle until a part runs. Printer-03 answers like OctoPrint: the gateway" && \
	echo "  prints the demo job's G-code on it; confirm \"The bed is clear\" on its page between parts." && \
	echo "  Time scale DEMO_TIME_SCALE=$$DEMO_TIME_SCALE:" && \
	echo "  an estimated hour runs in $$(awk "BEGIN{print 3600/$$DEMO_TIME_SCALE}") s; measured energy = estimate / $$DEMO_TIME_SCALE." && \
	echo "  Inject a fault: make fault NODE=Mill-01 FAULT=bearing_wear (FAULT=none repairs it)." && \
	echo "" && \
	$(BIN)/honcho start -f Procfile.dev

# Inject a fault into a running `make run` machine: NODE=Mill-01|Mill-02|Printer-01|Printer-02,
# FAULT=bearing_wear|overheat|power_spike|none.
NODE ?= Mill-01
FAULT ?= bearing_wear
fault: setup var/secret_key
	@SECRET_KEY="$$(cat var/secret_key)" DEBUG=1 DATABASE_URL= REDIS_URL= \
	  $(BIN)/python manage.py demo_fault $(NODE) $(FAULT)

# The whole suite. Uses DATABASE_URL / REDIS_URL when set (CI sets both), else SQLite/memory.
test: setup octoprint
	@missing=""; for tool in chromium docker-compose nginx pgbackrest restic; do PATH="$$PATH:/usr/sbin" command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "Install the Debian packages:$$missing (browser, compose, proxy and restore-drill tests need them)"; fi; fi
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy apps imewe celery_worker tests
	$(BIN)/mypy --strict edge
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy apps imewe celery_worker tests
	$(BIN)/mypy --strict edge

check-deploy: setup var/secret_key
	SECRET_KEY="$$(cat var/secret_key)" DEBUG=0 ALLOWED_HOSTS=imewe.example.com \
	  FIELD_ENCRYPTION_KEYS="$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING

schema: setup var/secret_key
	SECRET_KEY="$$(cat var/secret_key)" $(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

clean:
	rm -rf $(VENV) node_modules staticfiles var
