# The two commands:  make demo  (a simulated fleet on this machine, then workshop.yml against it)
#                    make test  (lint, unit tests, molecule scenarios against twin units)
# Everything else is a step of those two. Run as root on Debian 12.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
FLEET_SIZE ?= 4
SIM_INVENTORY := inventories/sim
FLEET_KEY := build/sim/fleet_key
MOLECULE_SCENARIOS ?= default runtime runtime_faults fleet prewarm content serving serving_faults webui
# The ansible-core minors meta/runtime.yml claims. The main venv (.venv) is the newest one; each older one has
# its own venv (requirements/core-X.Y.txt -> build/venvs/core-X.Y) for `make matrix`.
CORE_VERSIONS ?= 2.17 2.18 2.19
MATRIX_VERSIONS ?= $(filter-out 2.19,$(CORE_VERSIONS))
# Molecule's default scenario runs with the oldest claimed minor only (2.19 runs every scenario; 2.18 lies between and
# gets the unit tests and ansible-test): it keeps make test within its time.
MATRIX_MOLECULE_VERSIONS ?= $(firstword $(CORE_VERSIONS))
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)

.PHONY: demo test host venv images fleet-up fleet-down lint unit sanity molecule matrix collection browser-test clean help

help:
	@echo "make demo        bring up $(FLEET_SIZE) twin Thor units and run workshop.yml against them"
	@echo "make test        lint, unit tests, ansible-test, molecule scenarios ($(MOLECULE_SCENARIOS)), the ansible-core matrix"
	@echo "make fleet-up FLEET_SIZE=N / make fleet-down / make images / make lint / make unit / make molecule"
	@echo "make sanity      ansible-test sanity and units on the shipped collection, ansible-core $(CORE_VERSIONS)"
	@echo "make matrix      unit tests with each older ansible-core ($(MATRIX_VERSIONS)), molecule default with $(MATRIX_MOLECULE_VERSIONS)"
	@echo "make browser-test  the real Open WebUI (PyPI) in headless chromium, in front of the vLLM twin (not in make test)"

demo: fleet-up
	ansible-playbook -i $(SIM_INVENTORY) workshop.yml

test: lint unit sanity molecule matrix

host:
	@scripts/bootstrap-host.sh

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt | host
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

images: host
	twin/unit/build.sh
	twin/vllm/build.sh
	twin/open-webui/build.sh

# molecule mounts the fleet public key into its units at create, before any playbook runs
# (fleet_up.yml makes the same key with community.crypto for the demo fleet).
$(FLEET_KEY):
	mkdir -p $(dir $@)
	ssh-keygen -q -t ed25519 -N '' -C thor-twin-fleet -f $@

fleet-up: images venv
	ansible-playbook playbooks/sim/fleet_up.yml -e twin_fleet_size=$(FLEET_SIZE)

fleet-down: host venv
	ansible-playbook playbooks/sim/fleet_down.yml

lint: venv
	yamllint --strict .
	ruff check .
	scripts/check-argument-specs.py
	ansible-lint
	ansible-playbook -i thor_fleet workshop.yml --syntax-check
	$(MAKE) --no-print-directory collection

# Build the collection artifact and install it offline (its dependencies come with the ansible package).
collection: venv
	rm -rf build/dist && mkdir -p build/dist
	ansible-galaxy collection build --output-path build/dist >/dev/null
	cd build/dist && ANSIBLE_CONFIG= ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build/dist/installed ansible-galaxy collection install -p installed jetson_thor-workshop-*.tar.gz >/dev/null
	@d=build/dist/installed/ansible_collections/jetson_thor/workshop; \
	for f in LICENSE README.md meta/runtime.yml plugins/modules/thor_info.py changelogs/changelog.yaml; do \
	  test -f $$d/$$f || { echo "collection: $$f is missing from the artifact"; exit 1; }; done; \
	for f in playbooks roles; do test -d $$d/$$f || { echo "collection: $$f/ is missing from the artifact"; exit 1; }; done; \
	for f in ansible.cfg thor_fleet inventories workshop.yml collections tests twin $$(cd docs && ls twin*.md vllm-twin.md 2>/dev/null | sed 's|^|docs/|'); do \
	  ! test -e $$d/$$f || { echo "collection: $$f is checkout-only and must not ship (galaxy.yml build_ignore)"; exit 1; }; done
	# The installed collection's own playbook, by name, without this checkout's ansible.cfg.
	cd build/dist && ANSIBLE_CONFIG= ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build/dist/installed \
	  ANSIBLE_CALLBACKS_ENABLED=jetson_thor.workshop.fleet_status \
	  ansible-playbook jetson_thor.workshop.workshop -i $(CURDIR)/thor_fleet --syntax-check >/dev/null
	@echo "collection: built and installed offline: $$(ls build/dist/*.tar.gz); jetson_thor.workshop.workshop parses"

unit: venv
	pytest -q tests/unit tests/checkout twin/tests

# ansible-test sanity and units, offline, on the built artifact's content plus tests/ (scripts/ansible-test.sh).
sanity: venv
	scripts/ansible-test.sh $(CORE_VERSIONS)

# Each older claimed ansible-core runs the unit tests and molecule's default scenario in its own venv.
matrix: images venv $(FLEET_KEY)
	MATRIX_VERSIONS="$(MATRIX_VERSIONS)" MATRIX_MOLECULE_VERSIONS="$(MATRIX_MOLECULE_VERSIONS)" scripts/matrix.sh

molecule: images venv $(FLEET_KEY)
	# Scenarios use fixed unit names and addresses: one molecule run at a time on this machine.
	for s in $(MOLECULE_SCENARIOS); do flock /tmp/molecule.lock molecule test --scenario-name $$s; done

# The real Open WebUI from PyPI, started with the environment roles/open_webui renders, in front of the vLLM twin;
# headless chromium (Playwright) signs in, picks the model and reads a streamed answer (docs/open-webui.md). Installs
# chromium and build/venvs/browser (about 3 GB) on first use; artefacts in build/browser/.
browser-test: host venv
	tests/browser/run.sh

clean: fleet-down
	rm -rf build/reports
