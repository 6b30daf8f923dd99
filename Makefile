# raftlvs — the two commands that matter: `make demo` and `make test`.
GO       ?= go
# raft-boltdb/v2 v2.3.1 still imports go-metrics/compat; the tag routes its metrics to
# hashicorp/go-metrics instead of linking armon/go-metrics (see go.mod's replace).
export GOFLAGS := -tags=hashicorpmetrics
BIN      := bin/raftlvs
PKGS     := ./...

.PHONY: build test unit chaos-short chaos nft lint bench bench-failover lab-bench demo lab-setup lab-test clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN) ./cmd/raftlvs

# Everything CI runs: formatting and vet, the unit and namespace tests under the race
# detector, the fault-injection harness's short run, then the kernel lab's end-to-end
# scenarios.
test: lint unit chaos-short lab-test

unit:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# The chaos harness (chaos/DESIGN.md) on its own, so that its directors do not load the
# machine under the other packages' tests: three directors, every fault kind, a fixed
# seed, about two minutes. It asserts only what holds whenever the system is correct.
chaos-short: nft
	RAFTLVS_CHAOS=short $(GO) test -race -count=1 -timeout 8m -run TestChaos -v ./chaos

# The long run: five directors, 100+ leader kills and every fault kind, 20-40 minutes;
# prints its figures (README's Figures). CHAOS_FLAGS='-chaos.seed=N' replays a run.
chaos: nft
	RAFTLVS_CHAOS=long $(GO) test -count=1 -timeout 80m -run TestChaos -v ./chaos -args $(CHAOS_FLAGS)

nft:
	@command -v nft >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables; }

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

lab-setup:
	deploy/lab/lab.sh setup

lab-test: build lab-setup
	deploy/lab/lab.sh test --bin $(BIN)

demo: build lab-setup
	deploy/lab/lab.sh demo --bin $(BIN)

# Failover as a client sees it (10 crashes) and programming 10,000 services x 10 real
# servers against ipvsadm -R, in the lab VM. Slow under emulation: tens of minutes.
lab-bench: build lab-setup
	deploy/lab/lab.sh bench --bin $(BIN)

# Failover side by side on this host, in network namespaces the bench creates: keepalived
# (Debian's package, installed here if missing; VRRPv2 advert_int 1, VRRPv3 advert_int 0.1)
# and three raftlvs --vip-only directors (default and fast timing), crashes and planned
# handovers, 20 trials each, one table. About 17 minutes; not part of make test.
bench-failover: build
	@command -v keepalived >/dev/null && command -v nft >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq keepalived nftables iproute2; }
	$(GO) build -o bin/bench-failover ./bench/failover
	bin/bench-failover --bin $(BIN) $(BENCH_FLAGS)

clean:
	rm -rf bin
