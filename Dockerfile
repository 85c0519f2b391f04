# Build on the current LTS; the runtime image carries only production dependencies and the compiled output.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production PORT=3000
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/dist-console ./dist-console
COPY package.json ./
USER node
EXPOSE 3000
CMD ["node", "dist/apps/ledger/src/main.js"]
