# An S3 API server for docker/compose.local.yml on machines that cannot pull MinIO: moto's server (PyPI) with the
# project's launcher (moto_server.py, which the test suite runs too), which checks SigV4 signatures as AWS does. MOTO_ACCESS_KEY_ID /
# MOTO_SECRET_ACCESS_KEY give it fixed credentials; INITIAL_NO_AUTH_ACTION_COUNT=0 refuses unsigned requests from
# the first one. Objects live in memory: they are gone when the container stops (a test stack, not storage).
FROM debian:bookworm-slim
# The build machine's extra CAs (docker/local/ca/README.md), for pip behind a TLS-inspecting proxy.
COPY ca/ /usr/local/share/ca-certificates/
# hadolint ignore=DL3008,DL3013
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && update-ca-certificates >/dev/null \
    && python3 -m venv /opt/moto \
    && /opt/moto/bin/pip install --no-cache-dir --quiet "moto[server]==5.*" boto3 \
    && useradd --system --uid 10002 --home-dir /nonexistent --shell /usr/sbin/nologin moto
COPY moto_server.py /opt/moto/moto_server.py
ENV INITIAL_NO_AUTH_ACTION_COUNT=0
USER moto
EXPOSE 9000
HEALTHCHECK --interval=5s --timeout=5s --retries=20 \
    CMD ["/opt/moto/bin/python", "-c", "import socket; socket.create_connection(('127.0.0.1', 9000), 2)"]
ENTRYPOINT ["/opt/moto/bin/python", "/opt/moto/moto_server.py"]
CMD ["-H", "0.0.0.0", "-p", "9000"]
