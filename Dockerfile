# Builds the scorestream binary; used by docker-compose.yml.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin scorestream

FROM debian:bookworm-slim
COPY --from=build /src/target/release/scorestream /usr/local/bin/scorestream
COPY jobs /jobs
ENTRYPOINT ["scorestream"]
