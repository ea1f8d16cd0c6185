# One image for every role: `posthorn gateway`, `posthorn worker`, `posthorn migrate`.
FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY gateway ./gateway
COPY worker ./worker
COPY shared ./shared
COPY migrations ./migrations
USER node
ENTRYPOINT ["node", "bin/posthorn.js"]
CMD ["gateway"]
