# One image for the worker, the codec server and the migration job (by command).
# Build: docker build -t card-reissue:1.0 .

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY deploy/requirements.lock ./
RUN pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY reissue reissue
# The lock holds the runtime and worker-extra dependencies (tests/deploy checks it).
RUN pip install --no-deps .

FROM python:3.11-slim-bookworm
# The documents' Chinese font (reissue/documents): Debian's WenQuanYi Zen Hei.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-zenhei=0.9.45-8 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --create-home reissue
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    REISSUE_ENV=production \
    REISSUE_LOG_FORMAT=json \
    REISSUE_HEALTH_PORT=8080 \
    REISSUE_METRICS_ADDRESS=0.0.0.0:9464 \
    REISSUE_CODEC_HOST=0.0.0.0
USER 10001
WORKDIR /app
EXPOSE 8080 9464 8234
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["reissue"]
CMD ["worker"]
