# agriland serving image: CUDA 13 + cuDNN 9 runtime (what onnxruntime-gpu 1.31 is built for), non-root,
# `bentoml serve` as entrypoint, HEALTHCHECK on /readyz. Falls back to the CPU provider without a GPU.
# Build: docker build -t agriland .   Run: docker run --gpus all -p 3000:3000 -v $PWD/models:/app/models agriland
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    BENTOML_HOME=/home/agriland/bentoml \
    BENTOML_DO_NOT_TRACK=true \
    AGRILAND_MODELS_DIR=/app/models \
    AGRILAND_PROVIDERS=auto

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv $VIRTUAL_ENV

WORKDIR /app
COPY requirements-serve.txt .
RUN pip install -r requirements-serve.txt

RUN groupadd --gid 10001 agriland && useradd --create-home --uid 10001 --gid 10001 agriland
COPY --chown=agriland:agriland agriland/ agriland/
COPY --chown=agriland:agriland contract/ contract/
COPY --chown=agriland:agriland inference/ inference/
COPY --chown=agriland:agriland serving/ serving/
# models/ is mounted at run time (-v) or copied in by a derived image; the service stays up but not
# ready (/readyz 503, reason in the log) until valid artifacts are there.
RUN mkdir -p /app/models && chown agriland:agriland /app/models
USER 10001:10001

EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:3000/readyz || exit 1
ENTRYPOINT ["bentoml", "serve", "serving.service:Agriland", "--host", "0.0.0.0", "--port", "3000"]
