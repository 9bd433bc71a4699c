# fixit — the two commands a fresh clone needs are `make run` and `make test`.
GO          ?= go
BIN         ?= bin/fixit
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
# Settings for `make run`: .env when present, otherwise the demo values of .env.example.
ENVFILE     := $(if $(wildcard .env),.env,.env.example)

.PHONY: build run test chromium lint fmt-check vet staticcheck validate fuzz bench schema dist vendor-js clean

## build: the static binary (CGO_ENABLED=0, exactly what the Dockerfile builds)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/fixit

## run: build and serve flows.d on :8000 with SQLite at data/fixit.db
run: build
	@echo "fixit: settings from $(ENVFILE)"
	@mkdir -p data
	@set -a; . ./$(ENVFILE); set +a; exec ./$(BIN) serve

## test: gofmt check, go vet, staticcheck, the race-enabled test suite (the console's
## browser tests drive Debian's Chromium, installed when missing), the agreement test
## whole without the race detector (it takes fewer rounds under it), shipped flows and
## their scenarios
# -timeout: cmd/fixit's end-to-end and browser tests share 2 cores with every other
# package and may pass go test's default of 10 minutes for one package.
test: lint chromium
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -count=1 -run '^TestAgreement' ./cmd/fixit
	$(GO) run ./cmd/fixit validate flows.d examples
	$(GO) run ./cmd/fixit test --coverage flows.d examples

## chromium: Debian's Chromium for the console's browser tests, installed when missing
## (as root). Without it the browser tests fail under CI and are skipped elsewhere.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium for the console's browser tests"; \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
	    || echo "warning: could not install chromium; the browser tests will be skipped (or fail under CI)"; }

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
	$(GO) test ./connectors -run='^$$' -fuzz='^FuzzFileRefs$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./engine/files -run='^$$' -fuzz='^FuzzSanitizeName$$' -fuzztime=$(FUZZTIME)

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

## vendor-js: refresh the console's vendored htmx from the npm registry (needs npm; building
## and running fixit never do). Pinned versions; the files and their licences go to
## server/console/static/vendor/, whose VENDOR.md records them.
HTMX_VERSION     := 2.0.11
HTMX_SSE_VERSION := 2.2.4
VENDOR_DIR       := server/console/static/vendor
vendor-js:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cd "$$tmp" && npm pack --silent htmx.org@$(HTMX_VERSION) htmx-ext-sse@$(HTMX_SSE_VERSION) >/dev/null && \
	mkdir htmx sse && tar -xzf htmx.org-$(HTMX_VERSION).tgz -C htmx && tar -xzf htmx-ext-sse-$(HTMX_SSE_VERSION).tgz -C sse && \
	cd "$(CURDIR)" && \
	cp "$$tmp/htmx/package/dist/htmx.min.js" $(VENDOR_DIR)/htmx.min.js && \
	cp "$$tmp/htmx/package/LICENSE" $(VENDOR_DIR)/htmx.org.LICENSE && \
	cp "$$tmp/sse/package/dist/sse.min.js" $(VENDOR_DIR)/htmx-ext-sse.min.js && \
	cp "$$tmp/sse/package/LICENSE" $(VENDOR_DIR)/htmx-ext-sse.LICENSE && \
	sed -i -e 's/| `htmx.org` (`dist\/htmx.min.js`) | [^|]* |/| `htmx.org` (`dist\/htmx.min.js`) | $(HTMX_VERSION) |/' \
	       -e 's/| `htmx-ext-sse` (`dist\/sse.min.js`) | [^|]* |/| `htmx-ext-sse` (`dist\/sse.min.js`) | $(HTMX_SSE_VERSION) |/' $(VENDOR_DIR)/VENDOR.md && \
	echo "vendored htmx.org $(HTMX_VERSION), htmx-ext-sse $(HTMX_SSE_VERSION) into $(VENDOR_DIR)"

clean:
	rm -rf bin dist coverage.out
