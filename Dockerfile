# ads-mitigator: worker + HTTP API in one image (docker-compose.yml runs it next to Temporal on PostgreSQL).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
# The production image talks to a real Temporal cluster: no dev-server venv needed.
ENV ADS_SKIP_TEMPORAL_INSTALL=1
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY bench ./bench
COPY bin ./bin
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production API_HOST=0.0.0.0 DATA_DIR=/data
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY package.json ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# HTTPS when API_TLS_CERT is set; loopback liveness sends no credentials, so the certificate is not verified.
HEALTHCHECK --interval=10s --timeout=3s --retries=6 CMD node -e "require(process.env.API_TLS_CERT?'https':'http').get({host:'127.0.0.1',port:process.env.API_PORT||8080,path:'/healthz',rejectUnauthorized:false},(r)=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
CMD ["node", "dist/src/main.js"]
