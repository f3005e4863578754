# mqops — see README.md.
GO      ?= go
BIN     := bin
DATA    := data
GOFLAGS ?=
# The commands the end-to-end suites run.
E2E_CMDS := ./broker/cmd/mqnamesrv ./broker/cmd/mqbroker ./broker/cmd/mqamqp ./broker/cmd/mqnsaddr ./broker/cmd/mqcontroller ./mqadmin/cmd/mqadmin ./zabbix/cmd/mqops-zbx ./broker/cmd/mqbench
STATICCHECK_VERSION := v0.8.2

.PHONY: all build build-race run run-ha test-ha-soak test-ha-catchup test test-unit test-e2e test-e2e-grpc test-e2e-norace test-zabbix \
	test-zabbix-server test-amqp-rabbitmq test-ansible lint bench bench-acl bench-amqp bench-peers fuzz clean deps node-deps amqp-node-deps

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./broker/cmd/... ./mqadmin/cmd/... ./zabbix/cmd/... ./tests/loadclient ./tests/amqpclient

# The same commands with the race detector, for test-e2e.
build-race:
	$(GO) build $(GOFLAGS) -race -o $(BIN)/race/ $(E2E_CMDS)

# Start a name server and a broker on localhost; Ctrl-C stops both cleanly.
run: build
	./scripts/run.sh $(BIN) $(DATA)

# A name server with an embedded controller and a two-replica
# controller-mode group on localhost (conf/ha); Ctrl-C stops them.
run-ha: build
	./scripts/run-ha.sh $(BIN) $(DATA)-ha

# The full controller-mode kill loop: 30 x kill -9 of the master under
# live load (the e2e suite runs 3). Not part of make test.
MQOPS_HA_KILLS ?= 30
test-ha-soak: build
	MQOPS_E2E_BIN=$(CURDIR)/$(BIN) MQOPS_HA_KILLS=$(MQOPS_HA_KILLS) $(GO) test -count=1 -timeout 60m -v \
		-run '^TestControllerKillLoop$$' ./e2e/ >$(BIN)/test-ha-soak.log 2>&1; rc=$$?; \
		grep -E 'killloop:|^(--- |ok|FAIL)' $(BIN)/test-ha-soak.log; echo "full log: $(BIN)/test-ha-soak.log"; exit $$rc

# Slave catch-up soak: a slave stopped for 2 GiB of writes and an empty
# slave catch up and end byte-equal to the master (the e2e suite writes
# 64 MiB). Needs about 3 x 2.2 GiB in $TMPDIR. Not part of make test.
MQOPS_HA_CATCHUP_MIB ?= 2048
test-ha-catchup: build
	MQOPS_E2E_BIN=$(CURDIR)/$(BIN) MQOPS_HA_CATCHUP_MIB=$(MQOPS_HA_CATCHUP_MIB) $(GO) test -count=1 -timeout 60m -v \
		-run '^TestControllerSlaveCatchUp$$' ./e2e/ >$(BIN)/test-ha-catchup.log 2>&1; rc=$$?; \
		grep -E 'catchup:|^(--- |ok|FAIL)' $(BIN)/test-ha-catchup.log; echo "full log: $(BIN)/test-ha-catchup.log"; exit $$rc

# Everything CI runs. Installs what the tests need, builds bin/ once for
# every suite, then runs lint and the suites side by side (scripts/test.sh:
# per-suite logs in bin/test-logs, a summary table, one exit code).
test: deps
	$(MAKE) --no-print-directory build
	./scripts/test.sh

deps:
	./scripts/deps.sh openssh-server ansible ansible-lint curl zabbix-agent zabbix-agent2 \
	  zabbix-server-pgsql zabbix-frontend-php php-pgsql php-fpm postgresql nginx rabbitmq-server

lint: $(BIN)/tools/staticcheck-$(STATICCHECK_VERSION)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/tools/staticcheck-$(STATICCHECK_VERSION) ./...
	cd e2e/grpc && $(GO) vet ./... && $(CURDIR)/$(BIN)/tools/staticcheck-$(STATICCHECK_VERSION) ./...
	cd e2e/e2ed && $(GO) vet ./... && $(CURDIR)/$(BIN)/tools/staticcheck-$(STATICCHECK_VERSION) ./...
	ansible-lint -q -c tests/ansible/ansible-lint.yml ansible.cfg inventory playbooks roles tests/ansible

# staticcheck at a fixed version, from the Go module proxy.
$(BIN)/tools/staticcheck-$(STATICCHECK_VERSION):
	GOBIN=$(CURDIR)/$(BIN)/tools $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/tools/staticcheck $@

test-unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)
	cd e2e/e2ed && $(GO) test -race -count=1 ./...
	# Allocation bounds that rest on sync.Pool hold only without -race.
	$(GO) test -count=1 -run 'Allocations|TestLargeFramesRecycled' ./broker/server/ ./broker/acl/ ./remoting/

# Against race-built daemons and mqadmin (bin/race): a race report fails
# the test whose process printed it.
# e2e/grpc (the RocketMQ 5 clients; a module of its own) runs after
# ./e2e/ whatever its result.
# The RSS-bound tests (e2e/hostile_test.go memoryBoundTests) skip on race
# builds and run once more against the plain build.
# amqp-node-deps installs amqplib for TestAMQPNodeTutorials, which must
# then run (MQOPS_REQUIRE_NODE).
test-e2e: build-race build amqp-node-deps
	MQOPS_REQUIRE_NODE=1 MQOPS_E2E_BIN=$(CURDIR)/$(BIN)/race $(GO) test -count=1 -timeout 35m -parallel 6 -skip '^(TestZabbix|TestRabbitMQ)' ./e2e/; rc=$$?; \
	  MQOPS_E2E_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 15m -run '^(TestHostileSlowLargeFrames|TestHostileHeldPullsJunkHeader|TestNonReadingPeer|TestNonReadingPeerPipelinedPulls|TestSendSaturationShedsLoad)$$' ./e2e/ || rc=1; \
	  $(MAKE) --no-print-directory test-e2e-grpc E2E_GRPC_BIN=$(CURDIR)/$(BIN)/race || rc=1; exit $$rc

# The RabbitMQ tutorials with the Node.js client amqplib 2.3.1 (e2e
# TestAMQPNodeTutorials runs tests/amqp-node), exactly as its
# package-lock.json has it.
amqp-node-deps:
	@command -v npm >/dev/null || { echo "tests/amqp-node needs Node.js >= 20.14 with npm (https://nodejs.org)" >&2; exit 1; }
	cd tests/amqp-node && npm ci --no-audit --no-fund

# The RocketMQ 5 gRPC service with the official clients (e2e/grpc, its
# own Go module: golang/v5 v5.1.2 and rocketmq-client-go v2.1.2; its
# TestNodeClient runs the Node.js client's tests in e2e/node5).
E2E_GRPC_BIN ?= $(CURDIR)/$(BIN)
test-e2e-grpc: node-deps
	@[ -x $(E2E_GRPC_BIN)/mqbroker ] || $(MAKE) --no-print-directory build
	cd e2e/grpc && MQOPS_E2E_BIN=$(E2E_GRPC_BIN) $(GO) test -count=1 -timeout 15m ./...

# The Node.js client rocketmq-client-nodejs 1.0.8 and its dependencies,
# exactly as e2e/node5/package-lock.json has them.
node-deps:
	@command -v npm >/dev/null || { echo "e2e/node5 needs Node.js >= 20.14 with npm (https://nodejs.org)" >&2; exit 1; }
	cd e2e/node5 && npm ci --no-audit --no-fund

# The same without the race detector (not part of make test).
test-e2e-norace: build
	MQOPS_E2E_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m -parallel 6 -skip '^(TestZabbix|TestRabbitMQ)' ./e2e/

# The helper, user parameters and templates through a real zabbix_agentd
# and zabbix_agent2 (Debian packages, installed by deps).
test-zabbix: build
	MQOPS_E2E_BIN=$(CURDIR)/$(BIN) MQOPS_REQUIRE_ZABBIX=1 $(GO) test -count=1 -timeout 10m -run '^TestZabbix(Agent|Pop|Replication|ReplicationControllerMode|ControllerACL|AccountQuota|AMQP|AMQPGateway)$$' ./e2e/

# The AMQP acceptance tests (tutorials) against a private node of
# Debian's rabbitmq-server (installed by deps), started by the tests on
# loopback ports: what they assert of our gateway is what RabbitMQ does.
# Node's amqplib tutorials (tests/amqp-node) run there too.
test-amqp-rabbitmq: build amqp-node-deps
	MQOPS_E2E_BIN=$(CURDIR)/$(BIN) MQOPS_REQUIRE_RABBITMQ=1 MQOPS_REQUIRE_NODE=1 $(GO) test -count=1 -timeout 10m -run '^TestRabbitMQ' ./e2e/

# The templates imported into a real Zabbix 6.0 server (throwaway
# PostgreSQL, zabbix_server, frontend on php-fpm + nginx; about a minute):
# hosts linked, items get the cluster's values, discovery creates per-topic
# and per-group items.
test-zabbix-server: build
	MQOPS_E2E_BIN=$(CURDIR)/$(BIN) MQOPS_REQUIRE_ZABBIX=1 MQOPS_ZABBIX_SERVER=1 $(GO) test -count=1 -timeout 20m -run '^TestZabbixServer$$' ./e2e/

# Ansible rollout onto six network-namespace hosts (tests/ansible/run.sh; root).
test-ansible: build
	./tests/ansible/run.sh

# Short fuzzing of the frame decoder and the SQL92 parser (the seed
# corpora run in test-unit).
fuzz:
	$(GO) test ./wire/ -run '^$$' -fuzz FuzzDecodeFrame -fuzztime 60s
	$(GO) test ./broker/sql92/ -run '^$$' -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./wire/amqp/ -run '^$$' -fuzz FuzzFrameReader -fuzztime 60s
	$(GO) test ./wire/amqp/ -run '^$$' -fuzz FuzzTable -fuzztime 60s

# Load generator against a broker it starts itself; prints msgs/s and latency.
# nghttp2-client is h2load, the second gRPC send generator (Debian package,
# installed here as deps installs the test suite's). Then SQL92 filtering: one evaluation, and a pull through a filter next to
# an unfiltered one (ns/op and allocs/op). Last, the AMQP gateway next to
# Debian's RabbitMQ (bench-amqp).
bench: build
	./scripts/deps.sh nghttp2-client rabbitmq-server
	$(GO) build -o $(BIN)/ ./broker/cmd/mqbench
	./scripts/bench.sh $(BIN)
	./scripts/bench-acl.sh $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem ./broker/sql92/
	$(GO) test -run '^$$' -bench '^Benchmark(PullPipelined|PullSQL92|SendACL)$$' -benchmem ./broker/server/
	$(GO) test -run '^$$' -bench '^BenchmarkACLVerify$$' -benchmem ./broker/acl/
	$(GO) test -run '^$$' -bench '^BenchmarkSign$$' -benchmem ./wire/
	./scripts/bench-amqp.sh $(BIN)

# Send throughput with ACL off and on, in turns (also part of make bench).
bench-acl: build
	./scripts/bench-acl.sh $(BIN)

# The AMQP gateway next to Debian's RabbitMQ (installed if missing; a
# private node in a temp dir), one run: publish with confirms (1 and 16
# sync publishers, 4 x 500 async) and consume with prefetch 500, mqops vs
# classic and quorum queues, with the ratios against the targets
# (scripts/bench-amqp.sh; also part of make bench).
bench-amqp: build
	./scripts/deps.sh rabbitmq-server
	./scripts/bench-amqp.sh $(BIN)

# mqops next to Redis Streams (Debian's redis-server, installed if
# missing), interleaved, BENCH_REPS times (default 3): 64 sync senders on
# SYNC_FLUSH vs appendfsync always, one sync sender, 64 senders and
# batches on ASYNC_FLUSH vs everysec, also with the official Go client;
# prints medians, spread and the ratios (scripts/bench-peers.sh).
bench-peers: build
	./scripts/deps.sh redis-server
	$(GO) build -o $(BIN)/ ./broker/cmd/mqbench
	./scripts/bench-peers.sh $(BIN)

clean:
	rm -rf $(BIN) $(DATA)
