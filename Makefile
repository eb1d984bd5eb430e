# The two commands of the README. Both set up what they need first (idempotent, fast when
# nothing changed) and then run.
PY := .venv/bin/python
SNE := .venv/bin/sne-deploy
DEMO := runs/demo

.PHONY: setup lava-env sinabs-env spyx-env data demo test lint docs clean

setup:
	scripts/setup-env.sh main lava

sinabs-env:
	scripts/setup-env.sh sinabs

spyx-env:
	scripts/setup-env.sh spyx

lava-env:
	scripts/setup-env.sh lava

data:
	scripts/setup-env.sh data

# Train a small ensemble on digits, export it for Lava, simulate at budget 0.3.
demo: setup
	$(SNE) train --data digits --out $(DEMO)/model.pt
	$(SNE) export $(DEMO)/model.pt --target lava --force
	$(SNE) simulate $(DEMO)/model.lava --budget 0.3 --backend lava --mode fixed

test: setup data sinabs-env spyx-env
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

# Lint, import order and formatting (ruff), types (mypy); configured in pyproject.toml.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# The documentation site (mkdocs-material; CLI reference generated from the parser, API reference
# from the docstrings by mkdocstrings) into site/; strict: a broken link or reference fails.
docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet

clean:
	rm -rf runs .cache .pytest_cache site
