# The CDS Hooks service image: the wheel is built in a builder stage and installed, with its
# dependencies pinned by constraints.txt, into a clean python:3.11-slim (no source tree, tests or
# compilers in the final image). The default mapping tables and hook definitions ship inside the
# wheel (cds/defaults/); a site mounts its overrides and points CTO_CDS_MAPPINGS_DIR at them.
# RUN --mount needs BuildKit (the default builder since Docker 23).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cds ./cds
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
# The [postgres] extra (asyncpg) so CTO_CDS_DATABASE_URL may name PostgreSQL; SQLite needs nothing.
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \
    pip install --no-cache-dir --disable-pip-version-check -c /tmp/constraints.txt \
        "$(ls /dist/cto_cds-*.whl)[postgres]" \
    && useradd --system --uid 10001 cds && mkdir /data && chown cds /data
USER cds
WORKDIR /data
ENV CTO_CDS_DATABASE_URL=sqlite+aiosqlite:////data/cto-cds.db
EXPOSE 8000
ENTRYPOINT ["cto-cds"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
