# Build on the current LTS; the runtime image carries only production dependencies and the compiled output.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:24-slim
# glibc's malloc gives each thread that allocates an arena of its own (up to 8 per core) and keeps what is freed in
# them: V8's compiler and garbage-collector threads and the import's buffers left the service 45 MB above its idle
# RSS after an import, against 20 MB with two arenas, at the same CPU per row (bench/profile-notes.md, "the import's
# RSS, third pass"). The benches run the service with the same setting (bench/bench-support.ts, DEPLOYED_ENV).
ENV MALLOC_ARENA_MAX=2
ENV NODE_ENV=production PORT=3000
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/dist-console ./dist-console
COPY package.json ./
USER node
EXPOSE 3000
CMD ["node", "dist/apps/ledger/src/main.js"]
