# Glimpse: `make run` starts the app, `make test` runs the whole suite. Both create .venv when missing.
# Installs are stamped, so a second `make run` starts at once until a requirements file changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PORT ?= 8501

.PHONY: run test test-extras lint format clean-venv help

help:
	@echo "make run    install the app's requirements into $(VENV) and start streamlit on :$(PORT)"
	@echo "make test   install the dev requirements into $(VENV) and run the whole test suite"
	@echo "make test-extras  build $(EXTRAS_VENV) (torch 2.14.1, torchvision, timm, pytorch-grad-cam, lxt) and run tests/extras"
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

# The optional extras (torchvision, timm) and pytorch-grad-cam, in an environment of their own: PyPI's torchvision
# does not import beside .venv's CPU-only torch 2.13.0, so .venv-extras takes torch 2.14.1 with torchvision 0.29.1
# (requirements-extras-dev.txt) and every other pin of requirements.txt, in one resolve (the torch line filtered
# out, so pip never has two torch pins to reconcile). `make test-extras` runs only the tests that need them
# (tests/extras, which skip in .venv); `make test` and CI never touch this environment.
EXTRAS_VENV := .venv-extras
EXTRAS_PY := $(EXTRAS_VENV)/bin/python
EXTRAS_PIP := $(EXTRAS_PY) -m pip --disable-pip-version-check

$(EXTRAS_PY):
	$(PYTHON) -m venv $(EXTRAS_VENV)

$(EXTRAS_VENV)/.installed: requirements.txt requirements-extras-dev.txt pyproject.toml | $(EXTRAS_PY)
	grep -v '^torch==' requirements.txt > $(EXTRAS_VENV)/requirements-without-torch.txt
	$(EXTRAS_PIP) install -r requirements-extras-dev.txt -r $(EXTRAS_VENV)/requirements-without-torch.txt
	# lxt (AttnLRP's authors' library, the peer of tests/extras/test_lxt.py) without its own pins (bitsandbytes,
	# open_clip_torch, zennit: not used by its efficient rules)
	$(EXTRAS_PIP) install --no-deps lxt==2.1
	$(EXTRAS_PIP) install --no-deps -e .
	touch $@

test-extras: $(EXTRAS_VENV)/.installed
	$(EXTRAS_PY) -m pytest -q tests/extras

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
	rm -rf $(VENV) $(EXTRAS_VENV)
