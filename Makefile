# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-system lint bench-login clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet ".[dev]"
	touch $(STAMP)

# The app on http://127.0.0.1:$(PORT) (8000 unless `make run PORT=8001`) with the demo data. Its
# settings come from .env (written below when there is none): SQLite and tasks run in-process
# unless that file says otherwise. Passkeys need a domain: open http://localhost:$(PORT) to use them
# (with another PORT, set WEBAUTHN_ALLOWED_ORIGINS to match; .env.example).
# The demo's GeoIP City database (demo/geoip.py) is written under var/ (git-ignored) at every
# seed, and GEOIP_CITY_DB points at it for this command only, unless the environment names one.
PORT ?= 8000
DEMO_GEOIP := var/demo/geoip-city.mmdb
run: $(STAMP) .env
	$(BIN)/python manage.py migrate --noinput
	GEOIP_CITY_DB=$${GEOIP_CITY_DB:-$(DEMO_GEOIP)} $(BIN)/python manage.py seed_demo --geoip-db $(DEMO_GEOIP)
	GEOIP_CITY_DB=$${GEOIP_CITY_DB:-$(DEMO_GEOIP)} $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# The local settings every manage.py command reads: DEBUG on and a SECRET_KEY of its own. Written
# only when there is no .env (a file target with no prerequisites), and never over one that
# appeared meanwhile ("x" mode); readable by its owner only.
.env:
	$(PYTHON) -c 'import os, secrets, sys; os.umask(0o077); \
		open(sys.argv[1], "x").write(f"DEBUG=1\nSECRET_KEY={secrets.token_urlsafe(50)}\n")' $@

# The whole suite. On PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set; otherwise
# SQLite, with the PostgreSQL-only tests skipped and saying why. In TEST_WORKERS processes
# (pytest-xdist; each with a database and a Redis database of its own, tests/worker_env.py);
# `make test TEST_WORKERS=0` runs it in one.
TEST_WORKERS ?= 2
test: $(STAMP)
	SECRET_KEY=$${SECRET_KEY:-test-only-not-a-secret} DJANGO_ALLOW_ASYNC_UNSAFE=true \
		$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The load and fault suite alone (tests/system/, a few minutes; `make test` runs it too): its own
# gunicorn, Celery worker, beat and Redis against a database of its own. Needs PostgreSQL
# (DATABASE_URL) and redis-server; without them it fails instead of skipping.
test-system: $(STAMP)
	SECRET_KEY=$${SECRET_KEY:-test-only-not-a-secret} DJANGO_ALLOW_ASYNC_UNSAFE=true REQUIRE_POSTGRES=1 \
		$(BIN)/python -m pytest -m system tests/system $(PYTEST_ARGS)

# ruff, and the import layers of pyproject.toml's [tool.importlinter] (the graph is small: no cache).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	SECRET_KEY=$${SECRET_KEY:-lint-only-not-a-secret} DOTENV_FILE= $(BIN)/mypy .

bench-login: $(STAMP)
	SECRET_KEY=bench-only $(BIN)/python bench/login_overhead.py

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache
