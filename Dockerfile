# The CDS Hooks service image: the wheel is built in a builder stage and installed, with its
# dependencies pinned by constraints.txt, into a clean python slim image (no source tree, tests or
# compilers in the final image). The default mapping tables and hook definitions ship inside the
# wheel (cds/defaults/); a site mounts its overrides at /site/mappings (CTO_CDS_MAPPINGS_DIR).
# RUN --mount needs BuildKit (the default builder since Docker 23). deploy/README.md: how to run it.
#
# The base is pinned by tag and digest (multi-architecture index); the digest was taken from public
# repositories pinning the same tag, not checked against the registry here (no Docker engine). Update
# both together.
ARG PYTHON_IMAGE=python:3.11.14-slim@sha256:c8271b1f627d0068857dce5b53e14a9558603b527e46f1f901722f935b786a39

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cds ./cds
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}
# The [postgres] extra (asyncpg) so CTO_CDS_DATABASE_URL may name PostgreSQL; SQLite needs nothing.
# Wheels only (--only-binary): a dependency without one fails the build instead of compiling here.
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \
    pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        -c /tmp/constraints.txt "$(ls /dist/cto_cds-*.whl)[postgres]" \
    && groupadd --system --gid 10001 cds \
    && useradd --system --uid 10001 --gid 10001 --no-create-home cds \
    && mkdir -p /data /site/mappings && chown cds /data
# Read-only root filesystems (deploy/k8s): no .pyc written at run time, logs unbuffered.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CTO_CDS_DATABASE_URL=sqlite+aiosqlite:////data/cto-cds.db \
    CTO_CDS_MAPPINGS_DIR=/site/mappings
# /data: the SQLite store of a single node. /site/mappings: the site's mapping overrides (empty =
# the shipped defaults alone).
VOLUME ["/data", "/site/mappings"]
USER 10001:10001
WORKDIR /data
EXPOSE 8000
# The slim image has no curl: the probe is the image's own python. /healthz only says the process
# answers; readiness (database, mappings) is /readyz, for orchestrators that distinguish the two.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["cto-cds"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
