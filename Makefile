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
# poppler-utils to read PDFs back in the tests.
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig \
	fonts-noto-core fonts-noto-cjk poppler-utils

.PHONY: run test lint format system-packages install db demo clean

# Plain HTTP on this machine, so the session cookie cannot require HTTPS here.
run: install db demo
	SESSION_COOKIE_SECURE=false $(FLASK) run --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/ruff check letterapp tests
	$(BIN)/python -m pytest tests

lint: $(VENV)/.installed-test
	$(BIN)/ruff check letterapp tests

format: $(VENV)/.installed-test
	$(BIN)/ruff format letterapp tests

# Installs what is missing with apt-get when root; otherwise stops with the command to run.
system-packages:
	@missing=""; \
	if command -v dpkg-query >/dev/null; then \
	  for p in $(SYSTEM_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	  done; \
	else \
	  echo "Not a Debian/Ubuntu system: make sure the equivalents of these are installed: $(SYSTEM_PACKAGES)"; \
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

$(VENV)/.installed: requirements.txt | system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt tests/requirements.txt | system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r tests/requirements.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

# Creates or updates the SQLite database in instance/ (or DATABASE_URL); never drops data.
db: install
	$(FLASK) db upgrade

# The demo letter's sign-ons; running it again skips the ones already there.
demo: db
	$(FLASK) letter check $(DEMO)
	$(FLASK) signatures import $(DEMO) letters/$(DEMO).signatories.csv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
