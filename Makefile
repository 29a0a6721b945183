# letterapp: `make run` serves the demo letter, `make test` runs the checks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app letterapp
DEMO := civic-space-2026
HOST ?= 127.0.0.1
PORT ?= 5000

# Debian/Ubuntu packages: Pango and HarfBuzz's font subsetter for WeasyPrint,
# fontconfig and fonts that cover Latin, accented and Hangul names, and
# poppler-utils to read PDFs back (the workspace's page previews, and the tests).
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig \
	fonts-noto-core fonts-noto-cjk poppler-utils
# The tests also drive Debian's Chromium with Playwright's Python package (which then
# downloads no browser of its own).
TEST_PACKAGES := chromium
# The PostgreSQL server that `make test-pg` and the benchmarks start for one run.
PG_PACKAGES := postgresql
# A throwaway cluster: no need to survive a power cut.
PG_TEST_OPTIONS := -c fsync=off -c synchronous_commit=off -c full_page_writes=off

.PHONY: run test test-pg lint format system-packages system-packages-pg system-packages-test \
	pg-start pg-stop translations \
	install db demo clean

# Plain HTTP on this machine, so the session cookie cannot require HTTPS here.
run: install db demo
	SESSION_COOKIE_SECURE=false $(FLASK) run --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/ruff check letterapp tests benchmarks
	$(BIN)/python -m pytest tests

# The same tests on a PostgreSQL server started for this run on 127.0.0.1, then stopped.
test-pg: $(VENV)/.installed-test | system-packages-pg
	@dir=$$(mktemp -d); \
	trap '$(MAKE) -s --no-print-directory pg-stop PG_DIR='"$$dir"'; rm -rf '"$$dir" EXIT; \
	url=$$($(MAKE) -s --no-print-directory pg-start PG_DIR=$$dir PG_OPTIONS="$(PG_TEST_OPTIONS)") || exit 1; \
	echo "Tests on PostgreSQL: $$url"; \
	TEST_DATABASE_URL=$$url $(BIN)/python -m pytest tests

lint: $(VENV)/.installed-test
	$(BIN)/ruff check letterapp tests benchmarks

format: $(VENV)/.installed-test
	$(BIN)/ruff format letterapp tests benchmarks

# `make pg-start PG_DIR=<empty dir>` starts PostgreSQL on a free port of 127.0.0.1 with its
# data, socket and log in PG_DIR, and prints the database URL; `make pg-stop PG_DIR=...`
# stops it (the caller removes PG_DIR). PostgreSQL refuses to run as root: root runs it
# as `postgres`.
pg-start:
	@test -d "$(PG_DIR)" || { echo "usage: make pg-start PG_DIR=<an empty directory>" >&2; exit 2; }; \
	bin=$$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1); \
	bin=$${bin:-$$(dirname "$$(command -v initdb || echo /initdb)")}; \
	test -x "$$bin/initdb" || { echo "PostgreSQL is not installed: make system-packages-pg" >&2; exit 1; }; \
	as=""; if [ "$$(id -u)" = 0 ]; then chown postgres "$(PG_DIR)" && as="runuser -u postgres --" && cd /; fi; \
	port=$$($(PYTHON) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$$as "$$bin/initdb" -D "$(PG_DIR)/data" -U postgres -A trust -E UTF8 --no-locale >"$(PG_DIR)/initdb.log" 2>&1 \
	  || { cat "$(PG_DIR)/initdb.log" >&2; exit 1; }; \
	$$as "$$bin/pg_ctl" -D "$(PG_DIR)/data" -l "$(PG_DIR)/server.log" -w -t 60 \
	  -o "-h 127.0.0.1 -p $$port -k $(PG_DIR) $(PG_OPTIONS)" start >/dev/null \
	  || { cat "$(PG_DIR)/server.log" >&2; exit 1; }; \
	$$as "$$bin/createdb" -h 127.0.0.1 -p $$port -U postgres letterapp || exit 1; \
	echo "postgresql+psycopg://postgres@127.0.0.1:$$port/letterapp"

pg-stop:
	@test -d "$(PG_DIR)/data" || exit 0; \
	bin=$$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1); \
	bin=$${bin:-$$(dirname "$$(command -v pg_ctl)")}; \
	as=""; if [ "$$(id -u)" = 0 ]; then as="runuser -u postgres --"; cd /; fi; \
	$$as "$$bin/pg_ctl" -D "$(PG_DIR)/data" -m fast -w stop >/dev/null

# Installs the packages in $(1) that are missing, with apt-get when root; otherwise
# stops with the command to run.
define install_system_packages
	@missing=""; \
	if command -v dpkg-query >/dev/null; then \
	  for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	  done; \
	else \
	  echo "Not a Debian/Ubuntu system: make sure the equivalents of these are installed: $(1)"; \
	fi; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing system packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "Missing system packages:$$missing"; \
	    echo "Run:  sudo apt-get install -y$$missing"; \
	    echo "then run make again."; \
	    exit 1; \
	  fi; \
	fi
endef

system-packages:
	$(call install_system_packages,$(SYSTEM_PACKAGES))

system-packages-pg:
	$(call install_system_packages,$(PG_PACKAGES))

system-packages-test:
	$(call install_system_packages,$(SYSTEM_PACKAGES) $(TEST_PACKAGES))

$(VENV)/.installed: requirements.txt | system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt tests/requirements.txt | system-packages-test
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r tests/requirements.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

# After changing a signer-facing message: collect the messages into translations/messages.pot,
# add the new ones to each messages.po (translate them there), then compile the .mo files.
# The .mo files are committed, so running the app or the tests needs no build step;
# tests/test_languages.py fails when a .mo is older than its .po.
translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _l --no-wrap --sort-by-file \
	  --project letterapp -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-wrap --ignore-obsolete
	$(BIN)/pybabel compile -d translations --statistics

# Creates or updates the SQLite database in instance/ (or DATABASE_URL); never drops data.
db: install
	$(FLASK) db upgrade

# The demo letter's sign-ons; running it again skips the ones already there.
demo: db
	$(FLASK) letter check $(DEMO)
	$(FLASK) signatures import $(DEMO) letters/$(DEMO).signatories.csv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
