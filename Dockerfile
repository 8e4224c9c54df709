# syntax=docker/dockerfile:1.7
# Parley: one image, three commands (WORKDIR /app/service):
#   API         node dist/main-api.js
#   worker      node dist/main-worker.js
#   migrations  node dist/db/migrate.js
# and `jobs <command>` (dead letters, redrive, backup, restore, …) for `kubectl exec` into a worker.
# Build from the repository root: docker build -t parley .
# Node 24 LTS, pinned to an exact release (`npm run bench` measures the service on this release);
# pin by digest in CI with
#   --build-arg NODE_IMAGE=node:24.22.3-bookworm-slim@sha256:<digest>
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# ---- build: the service's dependencies (dev included) and the TypeScript compile -----------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Every workspace manifest is needed for `npm ci` to accept the lockfile; only the service's
# dependencies (and the root's build tools) are installed.
COPY package.json package-lock.json .npmrc ./
COPY service/package.json service/
COPY k8s-tests/package.json k8s-tests/
COPY pulumi/package.json pulumi/
RUN --mount=type=cache,target=/root/.npm \
    npm ci --workspace @parley/service --include-workspace-root --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json ./
COPY service/tsconfig.json service/tsconfig.build.json service/
COPY service/src service/src
RUN npm run build --workspace @parley/service

# ---- dev: `skaffold dev` target; tsx watches the synced sources -----------------------------------
FROM build AS dev
COPY service/drizzle service/drizzle
RUN chown -R 10001:10001 /src/service/src
WORKDIR /src/service
USER 10001:10001
ENV NODE_ENV=development
CMD ["npx", "tsx", "watch", "src/main-api.ts"]

# ---- prod-deps: production dependencies of the service only --------------------------------------
# `npm ci --omit=dev --workspace` still installs the other workspaces' runtime dependencies from the
# shared lockfile (Pulumi's tsx, esbuild, @pulumi/*, @grpc/grpc-js); prune-prod-deps.mjs then keeps
# only what the service's production dependency tree reaches. k8s-tests runs these same commands.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
COPY service/package.json service/
COPY k8s-tests/package.json k8s-tests/
COPY pulumi/package.json pulumi/
COPY docker/prune-prod-deps.mjs ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --workspace @parley/service --ignore-scripts --no-audit --no-fund \
 && node prune-prod-deps.mjs service \
 && rm -rf node_modules/@parley node_modules/.package-lock.json

# ---- runtime: compiled service + production dependencies, non-root, read-only friendly -----------
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="parley" \
      org.opencontainers.image.description="Parley chat service: API, worker and migrations" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://example.invalid/parley" \
      org.opencontainers.image.licenses="UNLICENSED"
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
# npm and corepack are not needed at run time: fewer files, fewer CVEs.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && printf '#!/bin/sh\nexec node /app/service/dist/main-jobs.js "$@"\n' > /usr/local/bin/jobs \
 && chmod 755 /usr/local/bin/jobs
WORKDIR /app
COPY --from=prod-deps /src/node_modules ./node_modules
COPY --from=prod-deps /src/service ./service
COPY --from=build /src/service/dist ./service/dist
# migrate.js resolves ../../drizzle from dist/db/.
COPY service/drizzle ./service/drizzle
WORKDIR /app/service
# Numeric user so Kubernetes can verify runAsNonRoot; nothing is written outside /tmp.
USER 10001:10001
EXPOSE 3000 9464 3001
CMD ["node", "dist/main-api.js"]
