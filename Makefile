# fixit — the two commands a fresh clone needs are `make run` and `make test`.
GO          ?= go
BIN         ?= bin/fixit
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
# Settings for `make run`: .env when present, otherwise the demo values of .env.example.
ENVFILE     := $(if $(wildcard .env),.env,.env.example)

.PHONY: build run test lint fmt-check vet staticcheck validate fuzz bench schema dist clean

## build: the static binary (CGO_ENABLED=0, exactly what the Dockerfile builds)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/fixit

## run: build and serve flows.d on :8000 with SQLite at data/fixit.db
run: build
	@echo "fixit: settings from $(ENVFILE)"
	@mkdir -p data
	@set -a; . ./$(ENVFILE); set +a; exec ./$(BIN) serve

## test: gofmt check, go vet, staticcheck, the race-enabled test suite, the agreement
## test whole without the race detector (it takes fewer rounds under it), shipped flows
## and their scenarios
test: lint
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '^TestAgreement' ./cmd/fixit
	$(GO) run ./cmd/fixit validate flows.d examples
	$(GO) run ./cmd/fixit test --coverage flows.d examples

## lint: gofmt, go vet and staticcheck
lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

validate:
	$(GO) run ./cmd/fixit validate flows.d examples

## fuzz: run each fuzzer for FUZZTIME (default 60s) — by hand, not in CI
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./engine -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./engine -run='^$$' -fuzz='^FuzzTemplate$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./engine -run='^$$' -fuzz='^FuzzParseTime$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./engine -run='^$$' -fuzz='^FuzzParseDuration$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./engine/scenario -run='^$$' -fuzz='^FuzzParseScenarios$$' -fuzztime=$(FUZZTIME)

## bench: bench/run.sh (webhook throughput of fixit against the in-run reference ceiling,
## end-to-end dialog steps/s, the same on 1,000,000 stored dialogs with peak memory, the Go
## benchmarks; saved in bench/results/)
bench:
	GO=$(GO) bash bench/run.sh

## schema: regenerate docs/flow.schema.json, docs/flows.md and docs/scenarios.md from the specs
schema:
	$(GO) test ./engine -run 'TestSchemaFile|TestReferenceDoc' -update
	$(GO) test ./engine/scenario -run 'TestScenarioDoc' -update

## dist: dist/fixit-$(VERSION).zip: static binaries for linux/amd64 and linux/arm64,
## README, docs/, flows.d/, examples/, .env.example, Dockerfile, docker-compose.yml,
## LICENSE and SHA256SUMS; reproducible: it builds twice and fails unless the bytes are
## the same (SOURCE_DATE_EPOCH overrides the entries' time, by default the last commit's)
dist:
	GO=$(GO) $(GO) run ./tools/dist -version $(VERSION) -out dist

clean:
	rm -rf bin dist coverage.out
