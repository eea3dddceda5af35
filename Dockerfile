# The one image of Brupop's three components, laid out as upstream's: static binaries /agent,
# /apiserver and /controller in an otherwise empty image (the charts run ./agent and so on from /).
#   docker build -t brupop-go:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/brupop-go:TAG --push .
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api ./api
COPY cmd ./cmd
COPY internal ./internal
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags='-s -w' -o /out/ \
      ./cmd/agent ./cmd/apiserver ./cmd/controller

FROM scratch
# Root certificates, for any TLS the components do beyond Brupop's own CA.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/agent /out/apiserver /out/controller /
WORKDIR /
# No USER: the agent needs root to reach the host API socket, as upstream's. The chart runs the
# apiserver and the controller as a non-root user.
