# Imewe production image: daphne (web), Celery worker and beat share it. In docker-compose,
# nginx stands in front of daphne and serves /app/staticfiles, copied to the `static` volume.
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=imewe.settings IMEWE_VAR_DIR=/var/lib/imewe
WORKDIR /app
RUN useradd --system --create-home --home-dir /home/imewe imewe \
    && mkdir -p /var/lib/imewe/media /srv/static \
    && chown imewe /var/lib/imewe /var/lib/imewe/media /srv/static
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY --from=assets /build/node_modules ./node_modules
COPY . .
# collectstatic needs settings, and settings refuse to load without a real-looking key:
# this one exists only for this build step and is not kept in the image.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    python manage.py collectstatic --noinput -v 0
USER imewe
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "imewe.asgi:application"]
