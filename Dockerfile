# The aura-sicd bot: `aura-sicd serve` (webhooks) as a non-root user, data in /data, Docker reached
# through DOCKER_HOST (the sandbox starts its check containers there). There is no Docker Hub on our
# machines: pass the base image, e.g. `docker build --build-arg BASE_IMAGE=aura-base:bookworm -t aura-sicd .`
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

ARG APP_UID=10001

ENV VIRTUAL_ENV=/opt/aura \
    PATH=/opt/aura/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AURA_DATA_DIR=/data \
    AURA_HOST=0.0.0.0 \
    AURA_PORT=3000

# git for the repository mirrors; Debian's python3 is externally managed (PEP 668), so a virtualenv.
RUN set -eux; \
    if ! command -v git >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get update; apt-get install -y --no-install-recommends git ca-certificates python3-venv; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -m venv "$VIRTUAL_ENV"

COPY pyproject.toml README.md /src/
COPY bot /src/bot
COPY webhooks /src/webhooks
COPY sandbox /src/sandbox
RUN pip install --no-cache-dir /src && rm -rf /src

RUN set -eux; \
    useradd --uid "$APP_UID" --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin aura; \
    mkdir -p /data; chown aura:aura /data

USER aura
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"
CMD ["aura-sicd", "serve"]
