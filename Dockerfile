# Minimal image: the cto-cds command. The CDS Hooks service entry point is added with the service.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cds ./cds
RUN pip install --no-cache-dir . && useradd --system --uid 10001 cds
USER cds
ENTRYPOINT ["cto-cds"]
CMD ["--help"]
