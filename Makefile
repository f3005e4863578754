# mqops — see README.md.
GO      ?= go
BIN     := bin
DATA    := data
GOFLAGS ?=

.PHONY: all build run test test-unit test-e2e test-ansible lint bench fuzz clean deps

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./broker/cmd/... ./mqadmin/cmd/...

# Start a name server and a broker on localhost; Ctrl-C stops both cleanly.
run: build
	./scripts/run.sh $(BIN) $(DATA)

# Everything CI runs. Installs what the tests need first.
test: deps lint test-unit test-e2e test-ansible

deps:
	./scripts/deps.sh openssh-server ansible ansible-lint curl

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

test-e2e:
	$(GO) test -count=1 -timeout 20m ./e2e/

# Ansible rollout onto three network-namespace hosts (tests/ansible/run.sh; root).
test-ansible: build
	./tests/ansible/run.sh

# Short fuzzing of the frame decoder (the seed corpus runs in test-unit).
fuzz:
	$(GO) test ./wire/ -run '^$$' -fuzz FuzzDecodeFrame -fuzztime 60s

# Load generator against a broker it starts itself; prints msgs/s and latency.
bench: build
	$(GO) build -o $(BIN)/ ./broker/cmd/mqbench
	./scripts/bench.sh $(BIN)

clean:
	rm -rf $(BIN) $(DATA)
