# syntax=docker/dockerfile:1
# Build: docker build -t fixit .   Run: see docker-compose.yml and the README.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The same static binary the tests run: CGO_ENABLED=0 go build ./cmd/fixit.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/fixit ./cmd/fixit \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fixit /usr/local/bin/fixit
COPY --from=build --chown=65532:65532 /out/data /var/lib/fixit
COPY flows.d /etc/fixit/flows.d
ENV FIXIT_ADDR=:8000 \
    FIXIT_DB=/var/lib/fixit/fixit.db \
    FIXIT_FLOWS=/etc/fixit/flows.d \
    FIXIT_LOG_FORMAT=json
VOLUME ["/var/lib/fixit"]
EXPOSE 8000
USER nonroot:nonroot
# The image has no shell and no curl: the binary asks its own /readyz (on the
# loopback address of FIXIT_ADDR) and exits 0 when ready, 1 when not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/fixit", "healthcheck", "--timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/fixit"]
CMD ["serve"]
