# Backprop Live in a container (README "Docker"). Not built on the development machines
# (they have no Docker): written with care, untested there.
#
#   docker build -t backprop-live .
#   docker run -p 8000:8000 -v bpl-data:/data -e BACKPROP_LIVE_TOKEN=<a long secret> backprop-live
#
# With optional extras (deploy/compose.yaml builds it so for the cluster):
#
#   docker build --build-arg EXTRAS=postgres,cluster -t backprop-live:cluster .
#
# The server listens on every interface inside the container, so it needs the token:
# without BACKPROP_LIVE_TOKEN it refuses to start (app/cli.py).

# ---- build: the front-end packages (npm ci) and the wheel that carries them ----------------
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# The three packages are plain files (htmx, its SSE extension, Swagger UI): no install scripts.
RUN SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund
COPY pyproject.toml README.md LICENSE requirements-runtime.lock ./
COPY app ./app
COPY templates ./templates
COPY static ./static
# The locked runtime dependencies (hashes checked), then the app's own wheel, which carries
# the templates, static files and the front-end files (pyproject.toml, force-include).
RUN python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --require-hashes -r requirements-runtime.lock \
    && /venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /venv/bin/pip install --no-cache-dir --no-deps /wheels/*.whl
# Optional extras, comma-separated (`postgres`, `cluster`; none by default). They are not in
# the runtime lock: pip resolves them from pyproject.toml's ranges, with every package the
# lock pins held at its pinned version (the lock without its hashes, as constraints: hashes
# there would demand them for the extras' packages too). An extra the wheel does not
# declare fails the build, rather than pip's warning and an image without it.
ARG EXTRAS=""
RUN if [ -n "$EXTRAS" ]; then \
        for extra in $(echo "$EXTRAS" | tr ',' ' '); do \
            /venv/bin/python -c "import importlib.metadata as m, sys; \
sys.exit(sys.argv[1] not in (m.metadata('backprop-live').get_all('Provides-Extra') or []))" \
                "$extra" || { echo "EXTRAS: pyproject.toml has no extra '$extra'" >&2; exit 1; }; \
        done \
        && sed -e '/^ *--hash=/d' -e 's/ *\\$//' requirements-runtime.lock > /tmp/pins.txt \
        && /venv/bin/pip install --no-cache-dir -c /tmp/pins.txt "$(ls /wheels/*.whl)[$EXTRAS]" \
        && /venv/bin/pip check; \
    fi

# ---- run: Python and the venv only (no Node, no sources) ----------------------------------
FROM python:3.11-slim-bookworm
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BACKPROP_LIVE_DB=/data/backprop-live.db
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin backprop \
    && mkdir /data && chown backprop:backprop /data
COPY --from=build /venv /venv
USER backprop
WORKDIR /data
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"]
CMD ["backprop-live", "serve", "--host", "0.0.0.0", "--port", "8000"]
