# The hub's image: the liaison package on python:3.11-slim, run as an unprivileged user.
# Used by docker-compose.yml for the router (`liaison serve`) and the audit writer.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs, so a change to the tests does not rebuild the image.
COPY pyproject.toml README.md ./
COPY liaison ./liaison
COPY schemas ./schemas
COPY producers ./producers
COPY consumers ./consumers
RUN pip install . \
 && useradd --create-home --uid 10001 liaison \
 && mkdir -p /var/lib/liaison \
 && chown liaison:liaison /var/lib/liaison

USER liaison
WORKDIR /var/lib/liaison
# Inside a container the web server must listen beyond loopback to be scraped;
# docker-compose.yml publishes it on the host's loopback only.
ENV LIAISON_HTTP_HOST=0.0.0.0 \
    LIAISON_HTTP_PORT=8787 \
    LIAISON_CREDENTIALS_DIR=/var/lib/liaison/credentials \
    LIAISON_AUDIT_DIR=/var/lib/liaison/audit \
    LIAISON_HUB_KEY_PATH=/var/lib/liaison/hub.key \
    LIAISON_LOG_JSON=true

EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/readyz', timeout=4)"]
CMD ["liaison", "serve"]
