# readtrail consumer image. Build: docker build -t readtrail:local .
# Build stage uses the full image (python3, make, g++) in case a dependency
# compiles a native addon; the runtime stage is the slim image.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm install, not npm ci: see the note in .ci/run about chdb's optional packages.
RUN npm install --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
# Local state (checkpoint log, verify state, keys, an embedded store if no
# ClickHouse URL is set). Owned by the unprivileged user and 0700: readtrail
# refuses a state directory group or others can reach, and a new Docker volume
# mounted here (or on keys/) starts with this owner and mode.
ENV READTRAIL_HOME=/var/lib/readtrail
RUN mkdir -p /var/lib/readtrail/keys \
  && chown -R node:node /var/lib/readtrail \
  && chmod 700 /var/lib/readtrail /var/lib/readtrail/keys
WORKDIR /app
# Whole app dir (dist, production node_modules and any runtime assets next to
# them), owned by root: the process that writes the audit log cannot rewrite
# its own code.
COPY --from=build /app ./
USER node
CMD ["node", "dist/cli/main.js", "consume"]
