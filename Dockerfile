# The CDS Hooks service image. The source tree is installed in place (pip -e) so the default
# mapping tables (mappings/) and service definitions (hooks/) ship beside the package; a site mounts
# its overrides and points CTO_CDS_MAPPINGS_DIR at them.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cds ./cds
COPY mappings ./mappings
COPY hooks ./hooks
RUN pip install --no-cache-dir -e . && useradd --system --uid 10001 cds && mkdir /data && chown cds /data
USER cds
ENV CTO_CDS_DATABASE_URL=sqlite+aiosqlite:////data/cto-cds.db
EXPOSE 8000
ENTRYPOINT ["cto-cds"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
