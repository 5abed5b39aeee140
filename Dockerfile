# syntax=docker/dockerfile:1
#
# raftdss image: static core-service and dssctl on distroless (no shell, no
# package manager), run as the distroless nonroot user (65532). See
# docs/deployment.md.
#
#   docker build -t raftdss:dev .
#
# The build is reproducible: -trimpath and an empty build ID keep paths and
# build IDs out of the binaries, -buildvcs=false keeps VCS stamps out, and
# the .dockerignore keeps local state (.git, data and key directories) out of
# the context. Pin the base images by digest (name:tag@sha256:...) for
# byte-identical rebuilds.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
RUN go build -trimpath -ldflags=-buildid= -o /out/bin/core-service ./cmds/core-service && \
    go build -trimpath -ldflags=-buildid= -o /out/bin/dssctl ./cmds/dssctl && \
    mkdir -p /out/data /out/certs /out/dev-key && chmod 0700 /out/data /out/certs /out/dev-key

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/core-service /out/bin/dssctl /usr/local/bin/
# Mount points owned by the nonroot user, so that a fresh named volume
# mounted on them is writable by it (Docker copies the owner into it).
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/certs /certs
COPY --from=build --chown=65532:65532 /out/dev-key /dev-key
USER 65532:65532
WORKDIR /data
VOLUME /data
# 8080: the DSS API (--addr); 26001: raft between members (--raft_addr).
EXPOSE 8080 26001
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/dssctl","health","--url","http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/core-service"]
CMD ["--raft_data_dir","/data","--addr",":8080"]
