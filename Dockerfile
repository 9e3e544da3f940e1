# kiebot's image: `docker build -t kiebot .` then see deploy/compose.yaml (README "Deploy").
# Slim Python, the package installed into a venv in a build stage, run as an unprivileged user.
# Settings come from the environment (compose env_file / `docker run --env-file .env`).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kiebot ./kiebot
COPY bot ./bot
COPY handlers ./handlers
COPY kie_client ./kie_client
COPY storage ./storage
COPY migrations ./migrations
COPY testkit ./testkit
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin kiebot \
    && mkdir -p /app/data /app/media \
    && chown -R kiebot:kiebot /app
COPY --from=build /opt/venv /opt/venv
# SERVER_HOST: listen on every interface of the container. The port is SERVER_PORT, else PORT
# (set by platforms such as Cloud Run), else 8080. SQLite (the default database) lives in
# /app/data, stored results (MEDIA_STORE=local) in /app/media: mount volumes on both.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SERVER_HOST=0.0.0.0 \
    MEDIA_DIR=/app/media
WORKDIR /app
USER kiebot
VOLUME ["/app/data", "/app/media"]
EXPOSE 8080
# Liveness: /healthz on the port the bot chose, the same way (SERVER_PORT, PORT, 8080).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SERVER_PORT') or os.environ.get('PORT') or '8080'; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:' + port + '/healthz', timeout=4).status == 200 else 1)"]
# SIGTERM lets in-flight work finish (up to KIE_TIMEOUT_SECONDS + 5 s): give it stop_grace_period.
STOPSIGNAL SIGTERM
CMD ["kiebot", "run"]
