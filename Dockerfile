# Builds the scorestream binary; used by docker-compose.yml.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin scorestream

FROM debian:bookworm-slim
# librdkafka links OpenSSL for TLS/SASL to secured clusters.
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/scorestream /usr/local/bin/scorestream
COPY jobs /jobs
ENTRYPOINT ["scorestream"]
