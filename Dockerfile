# Build on the current LTS; the runtime image carries only production dependencies and the compiled output.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:24-slim
# glibc's malloc gives each thread that allocates an arena of its own (up to 8 per core) and keeps what is freed in
# them: during a 100,000-row import the service's memory outside the V8 heap and its buffers grew by about 45 MB
# (V8's compiler and collector threads, the import's and pg's buffers), by about 25 MB with two arenas, and the peak
# RSS fell from 286, 286 to 259, 257 MB at the same CPU per row (bench/profile-notes.md, "the import's RSS, third
# pass"). The benches run the service with the same setting (bench/bench-support.ts, DEPLOYED_ENV).
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
