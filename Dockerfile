# syntax=docker/dockerfile:1
# The shop's image: dependencies from uv.lock only (uv sync --frozen), built in one stage and
# copied into a slim runtime that runs as an unprivileged user. See README, "Deploying".

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first (a layer that changes only with uv.lock), then the project itself.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups --no-install-project
COPY README.md pricing.toml ./
COPY app ./app
COPY templates ./templates
COPY static ./static
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups \
    && /app/.venv/bin/python -m compileall -q /app/app

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 storefront \
    && useradd --system --uid 10001 --gid storefront --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin storefront \
    && mkdir -p /var/lib/storefront \
    && chown storefront:storefront /var/lib/storefront
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STOREFRONT_ENV=production \
    STOREFRONT_VAR_DIR=/var/lib/storefront \
    PORT=8000
WORKDIR /app
# Owned by root and read-only to the shop: code, templates and the catalogue never change at run time.
COPY --from=build /app /app
USER 10001:10001
EXPOSE 8000
VOLUME ["/var/lib/storefront"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2); sys.exit(r.status != 200)"]
# One replica alone may migrate on start; compose runs `database upgrade` once and --no-migrate here.
CMD ["storefront", "serve", "--host", "0.0.0.0", "--workers", "2"]
