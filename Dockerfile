# Fanout: one image for web, workers (media, publish), beat, flower and the migrate job.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FANOUT_HOME=/data

# A CJK font for titles burnt into images and videos (no tofu); tzdata for Asia/Shanghai.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk tzdata \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies are pinned in pyproject.toml; copy the code the package declares
# (packages services*, channels*, media* and the py-module `worker`) and install it.
COPY pyproject.toml ./
COPY worker.py ./
COPY services ./services
COPY channels ./channels
COPY media ./media
RUN pip install --no-cache-dir . \
 && fanout --help >/dev/null \
 && python -c "import worker"

# Run as a non-root user. /data is created here and owned by that user, so a fresh named
# volume mounted on it inherits the ownership.
RUN groupadd --system --gid 10001 fanout \
 && useradd --system --uid 10001 --gid fanout --create-home --home-dir /home/fanout \
      --shell /usr/sbin/nologin fanout \
 && mkdir -p /data \
 && chown fanout:fanout /data
USER fanout

# WORKDIR /app holds worker.py, so `celery -A worker …` works from here (it is also installed).
EXPOSE 8000
CMD ["fanout", "web", "--host", "0.0.0.0"]
