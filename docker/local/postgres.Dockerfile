# PostgreSQL from Debian's own package, for docker/compose.local.yml on machines that cannot pull the official
# postgres image. It honours the official image's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB and data path,
# so docker/compose.yml's postgres service runs unchanged on it. Debian 12 ships PostgreSQL 15 (the official image
# in compose.yml is 16); the catalog needs 13 or later.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
    && install -d -o postgres -g postgres -m 0775 /var/run/postgresql
COPY --chmod=0755 postgres-entrypoint /usr/local/bin/postgres-entrypoint
ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:$PATH
VOLUME ["/var/lib/postgresql/data"]
USER postgres
EXPOSE 5432
HEALTHCHECK --interval=5s --timeout=5s --retries=20 CMD ["pg_isready", "-h", "127.0.0.1"]
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
