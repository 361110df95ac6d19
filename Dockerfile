# Multi-stage build: compile in the Rust image, run from a slim Debian with the binary only.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migration migration
COPY src src
RUN cargo build --release --locked --bin postier

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/postier --create-home postier
COPY --from=build /src/target/release/postier /usr/local/bin/postier
USER postier
WORKDIR /var/lib/postier
ENV POSTIER_LISTEN=0.0.0.0:8080 POSTIER_DATA_DIR=/var/lib/postier/data POSTIER_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fs http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["postier"]
CMD ["serve"]
