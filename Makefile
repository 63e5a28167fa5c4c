# The two commands a newcomer needs: `make demo` (install + index the demo library) and `make test`.
VENV ?= .venv
PYTHON ?= python3
# torch/torchvision come from this machine's disk (pip's find-links); override on other machines.
TORCH ?= torch==2.14.1 torchvision==0.29.1
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install demo test bench app clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/system-deps.sh
	./scripts/system-deps.sh
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q $(TORCH)
	$(VENV)/bin/pip install -q -e '.[dev,ray]'
	touch $@

demo: install
	dvc repro
	vidsim status
	@echo
	@echo "Done. Open the app:     streamlit run streamlit_app/main.py"
	@echo "Query from the shell:   vidsim query data/demo/queries/$$(ls data/demo/queries | grep mp4 | head -1) --modality audio"
	@echo "Index your own videos:  vidsim index ~/Videos   (README, \"Your own library\")"
	@echo "(activate the environment first: source $(VENV)/bin/activate)"

test: install
	WITH_BROWSER=1 ./scripts/system-deps.sh
	pytest

bench: install
	python -m vidsim.bench

app: install
	streamlit run streamlit_app/main.py

clean:
	rm -rf data/extracted data/features data/models data/index
