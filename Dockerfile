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
WORKDIR /app
# Whole app dir (dist, production node_modules and any runtime assets next to them).
COPY --from=build --chown=node:node /app ./
USER node
CMD ["node", "dist/cli/main.js", "consume"]
