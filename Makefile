# Glimpse: `make run` starts the app, `make test` runs the whole suite. Both create .venv when missing.
# Installs are stamped, so a second `make run` starts at once until a requirements file changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PORT ?= 8501

.PHONY: run test lint format clean-venv help

help:
	@echo "make run    install the app's requirements into $(VENV) and start streamlit on :$(PORT)"
	@echo "make test   install the dev requirements into $(VENV) and run the whole test suite"
	@echo "make lint   ruff check + format check"

$(PY):
	$(PYTHON) -m venv $(VENV)

# The pinned requirements first, then glimpse itself, editable (--no-deps: its dependencies are the pins
# just installed), so `import glimpse` and `python -m glimpse` work from any folder and from a notebook.
$(VENV)/.installed-app: requirements.txt pyproject.toml | $(PY)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml | $(PY)
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps -e .
	touch $(VENV)/.installed-app $@

run: $(VENV)/.installed-app
	GLIMPSE_SERVER_PATHS=1 $(VENV)/bin/streamlit run app.py --server.port $(PORT) --browser.gatherUsageStats false

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
