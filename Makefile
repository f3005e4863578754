# mqops — see README.md.
GO      ?= go
BIN     := bin
DATA    := data
GOFLAGS ?=

.PHONY: all build run test test-unit test-e2e test-zabbix test-zabbix-server test-ansible lint bench fuzz clean deps

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./broker/cmd/... ./mqadmin/cmd/... ./zabbix/cmd/...

# Start a name server and a broker on localhost; Ctrl-C stops both cleanly.
run: build
	./scripts/run.sh $(BIN) $(DATA)

# Everything CI runs. Installs what the tests need first.
test: deps lint test-unit test-e2e test-zabbix test-zabbix-server test-ansible

deps:
	./scripts/deps.sh openssh-server ansible ansible-lint curl zabbix-agent zabbix-agent2 \
	  zabbix-server-pgsql zabbix-frontend-php php-pgsql php-fpm postgresql nginx

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

test-e2e:
	$(GO) test -count=1 -timeout 20m -parallel 6 -skip '^TestZabbix' ./e2e/

# The helper, user parameters and templates through a real zabbix_agentd
# and zabbix_agent2 (Debian packages, installed by deps).
test-zabbix:
	MQOPS_REQUIRE_ZABBIX=1 $(GO) test -count=1 -timeout 10m -run '^TestZabbixAgent$$' ./e2e/

# The templates imported into a real Zabbix 6.0 server (throwaway
# PostgreSQL, zabbix_server, frontend on php-fpm + nginx; about a minute):
# hosts linked, items get the cluster's values, discovery creates per-topic
# and per-group items.
test-zabbix-server:
	MQOPS_REQUIRE_ZABBIX=1 MQOPS_ZABBIX_SERVER=1 $(GO) test -count=1 -timeout 20m -run '^TestZabbixServer$$' ./e2e/

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
