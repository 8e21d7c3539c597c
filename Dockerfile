# customer360: build in the Rust image, run from a slim Debian as a non-root user.
# The binary links no C database libraries (diesel-async over tokio-postgres), so the runtime
# image needs only CA certificates (and curl for the health check).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY load-tests/Cargo.toml load-tests/
RUN mkdir -p src load-tests/src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > load-tests/src/main.rs \
    && cargo build --release --locked --bin customer360 || true
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin customer360

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin c360
COPY --from=build /src/target/release/customer360 /usr/local/bin/customer360
USER 10001:10001
ENV C360_BIND=0.0.0.0:8360 \
    RUST_LOG=info
EXPOSE 8360
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["curl", "-fsS", "http://127.0.0.1:8360/healthz"]
ENTRYPOINT ["customer360"]
CMD ["serve"]
