# One image for the web app and the Celery workers.
# GPU worker: docker build --build-arg EXTRAS=gpu -t tandem:gpu .   (adds vLLM and CUDA wheels)
FROM python:3.11-slim-bookworm

# Comma-separated extras from pyproject.toml to install on top of the base dependencies.
ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TANDEM_DATA_DIR=/var/lib/tandem

WORKDIR /app

# Dependencies first, listed from pyproject.toml alone: a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import os, tomllib; \
p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [e.strip() for e in os.environ.get('EXTRAS', '').split(',') if e.strip()]; \
print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Editable on purpose: the app finds alembic.ini, migrations/, templates/ and static/ next to app/.
COPY . .
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent \
        --shell /usr/sbin/nologin tandem \
    && mkdir -p /var/lib/tandem \
    && chown tandem:tandem /var/lib/tandem

USER tandem
EXPOSE 8000
CMD ["tandem", "serve", "--host", "0.0.0.0", "--port", "8000"]
