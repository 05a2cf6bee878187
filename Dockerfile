# The scorestream image: docker-compose.yml runs `scorestream serve` from it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin scorestream

FROM debian:bookworm-slim
# librdkafka links OpenSSL for TLS/SASL to secured clusters; ca-certificates
# for those and for S3 outputs over HTTPS.
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/scorestream /usr/local/bin/scorestream
# The demo and example jobs (with the demo's model and features), for
# `serve --base-dir /jobs` and `--submit`; compose mounts ./jobs over it.
COPY jobs /jobs
# `scorestream serve --listen 0.0.0.0:8080`: the API and /metrics.
EXPOSE 8080
ENTRYPOINT ["scorestream"]
