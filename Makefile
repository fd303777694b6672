# Two entry points for a fresh machine (see README):
#   make serve  -> installs into .venv and serves the built-in example models
#   make test   -> installs everything the tests need (Chromium too) and runs them all
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned: an unpinned torch would pull a newer, multi-GB CUDA build. On this project's
# machines torch==2.13.0 resolves to a CPU wheel kept on disk; elsewhere on Linux PyPI's wheel
# is the CUDA build: add TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu" for CPU.
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install install-test chromium serve test bench lint

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Stamps: pip runs again only when pyproject.toml changes, so a second `make serve` starts in seconds.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH)"
	$(PY) -m pip install -q "$(TORCH)" -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH)"
	$(PY) -m pip install -q "$(TORCH)" -e ".[test,bench]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Playwright drives Debian's Chromium (playwright's own browser download cannot work offline).
chromium:
	@if [ -n "$$TORCHSCOPE_CHROMIUM" ] && [ -x "$$TORCHSCOPE_CHROMIUM" ]; then \
		echo "chromium: $$TORCHSCOPE_CHROMIUM"; \
	elif [ -x /usr/lib/chromium/chromium ] || [ -x /usr/bin/chromium ]; then \
		echo "chromium: present"; \
	else \
		echo "chromium: installing Debian's package"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

serve: install
	$(VENV)/bin/torchscope serve --host $(HOST) --port $(PORT)

test: install-test chromium
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Each script prints its figures next to the peer tool's, measured in the same run.
bench: install-test
	@set -e; for f in benchmarks/*.py; do \
		case $$f in */zoo.py|*/__init__.py) continue;; esac; \
		echo "== $$f"; $(PY) $$f; \
	done

# Static checks (strict mypy on the package, ruff on everything).
$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH)"
	$(PY) -m pip install -q "$(TORCH)" -e ".[test,bench,dev]"
	touch $@

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check app tests benchmarks
	@# mypy cannot follow setuptools' editable finder (torchscope -> app/): give it the mapping as a link.
	@mkdir -p build/typecheck && ln -sfn ../../app build/typecheck/torchscope
	MYPYPATH=build/typecheck $(PY) -m mypy -p torchscope
