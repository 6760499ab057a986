# talkerd development entry points. `make run` and `make test` work on a fresh Debian 12 machine.
PY      := .venv/bin/python
CONFIG  ?= configs/default.toml
STAMP   := .venv/.talkerd-setup

.PHONY: setup run test bench plan check-target samples clean

$(STAMP): pyproject.toml scripts/setup.sh tools/provision_models.py
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m talkerd run --config $(CONFIG)

test: $(STAMP)
	bash scripts/with-test-services.sh $(PY) -m pytest -q -ra

bench: $(STAMP)
	bash scripts/with-test-services.sh $(PY) -m talkerd bench --config $(CONFIG) --turns 5 --json out/bench.json

samples: $(STAMP)
	$(PY) tools/render_samples.py

check-target: $(STAMP)
	$(PY) tools/check_target.py

plan: $(STAMP)
	$(PY) -m talkerd plan --config $(CONFIG)

clean:
	rm -rf .venv var out
