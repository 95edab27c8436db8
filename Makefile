# Two commands do everything (see README.md):
#   make study   set up .venv, run every chapter on the default `cpu` profile (cached), build the book
#   make test    set up .venv, run the test suite (includes the smoke-profile chapters and a book build)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= cpu
# chapters executed at once (each runs torch on one thread on the cpu profile); JOBS=1 on a single GPU
JOBS ?= 2
STAMP  := $(VENV)/.installed

.PHONY: setup browser study book edition test zoo lock clean-notebooks clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (medtask)" >/dev/null
	touch $(STAMP)

# Debian's chromium for the browser page check (tests/pipeline/test_pagecheck.py), installed where missing and
# where this user may (root with apt-get); elsewhere the check is skipped with a message saying how to install it.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	       && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } \
	  || echo "chromium is not installed (Debian: apt-get install chromium): the browser page check will be skipped"

study: setup
	$(BIN)/medtask book --profile $(PROFILE) --jobs $(JOBS)

# the book without training: from the chapters `make study` executed when all are there, else from edition/
book: setup
	$(BIN)/medtask book --profile $(PROFILE) --no-run

# replace the published edition (edition/) with the chapters `make study` executed (then review and commit it)
edition: setup
	$(BIN)/medtask edition save --profile $(PROFILE)

test: setup browser
	$(BIN)/python -m pytest -q

# Retrain every zoo entry (hours on a CPU; resumable: state in zoo-runs/, weights + cards in zoo/).
zoo: setup
	$(BIN)/medtask zoo train --all

# Re-resolve the pinned versions (run deliberately, then review and commit constraints.txt).
lock:
	$(BIN)/python -m pip list --format=freeze --exclude-editable | grep -v -E "^(medtask|pip)==" > constraints.txt

clean-notebooks: setup
	$(BIN)/medtask clean-notebooks

clean:
	rm -rf _build book/generated book/_toc.build.yml .medtask-cache
