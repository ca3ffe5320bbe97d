# syntax=docker/dockerfile:1
# Portcullis image: Node 24 LTS (slim), the compiled dist/ and production dependencies only, runs as a
# non-root user.
#   docker build -t portcullis:0.1.0 .
#   docker run --rm -p 9191:9191 -p 9192:9192 portcullis:0.1.0            # serves examples/portcullis.yaml
#   docker run ... -v ./my-config:/etc/portcullis:ro portcullis:0.1.0 serve --config /etc/portcullis/portcullis.yaml
# Checked by test/deploy/dockerfile.test.ts (no Docker engine runs in CI).
ARG NODE_IMAGE=node:24-slim

# Production dependencies: the only node_modules the runtime image gets.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Every dependency: the TypeScript compiler for `build`, oidc-provider for `dev-idp`.
FROM ${NODE_IMAGE} AS dev-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

# Compiles src/ into dist/ (`npm run build`, tsc); only dist/ leaves this stage.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY --from=dev-deps /app/node_modules ./node_modules
COPY package.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && rm dist/.tsbuildinfo

# docker-compose's `idp` service: oidc-provider (a dev dependency) issuing JWT access tokens.
FROM ${NODE_IMAGE} AS dev-idp
WORKDIR /app
COPY --from=dev-deps /app/node_modules ./node_modules
COPY package.json ./
COPY deploy/compose/idp.mjs ./deploy/compose/idp.mjs
USER 1000:1000
EXPOSE 3000
CMD ["node", "deploy/compose/idp.mjs"]

# The runtime image (the default target: last stage).
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY examples ./examples
# The example's key store, made at build time from its demo seed: the runtime user cannot write here.
RUN ["cp", "examples/demo-only-keys.yaml", "examples/keys.yaml"]
# The image's `node` user, by number so Kubernetes can verify runAsNonRoot.
USER 1000:1000
# gRPC (ext_authz Check, health) and ops (/healthz /readyz /metrics).
EXPOSE 9191 9192
# Liveness of the ops listener on its default port; orchestrators should use /readyz for traffic.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9192/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/portcullis.js"]
CMD ["serve", "--config", "/app/examples/portcullis.yaml"]
