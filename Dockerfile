# 未保热线 — one image for every process kind: api (default), worker, scheduler.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY db db
COPY workflows workflows
COPY channels channels
COPY dispatch dispatch
COPY alembic alembic
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOTLINE_HOST=0.0.0.0 HOTLINE_PORT=8000 \
    HOTLINE_DATA_DIR=/var/lib/hotline
RUN useradd --system --create-home --home-dir /var/lib/hotline hotline
COPY --from=build /opt/venv /opt/venv
# Migrations are run from the source tree's alembic/ folder.
COPY --chown=hotline:hotline alembic.ini /app/alembic.ini
COPY --chown=hotline:hotline alembic /app/alembic
WORKDIR /app
USER hotline
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,os;urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"HOTLINE_PORT\"]}/healthz')"
# The API container migrates first; worker and scheduler containers override the command.
CMD ["sh", "-c", "hotline migrate && exec hotline api"]
