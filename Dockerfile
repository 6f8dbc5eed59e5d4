# gateway: OpenAI-compatible LLM gateway.
# Build: docker build -t gateway:0.1.0 .
# Run:   docker run -p 8000:8000 -e GATEWAY_MASTER_KEY=... -e OPENAI_API_KEY=... gateway:0.1.0
# Compose and Kubernetes: deploy/ and docs/deploy.md. deploy/check_image_recipe.py replays this
# file's steps in a Debian chroot, since no container engine runs on the project's machines.
FROM python:3.11.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    GATEWAY_CONFIG=/app/config/gateway.yaml \
    GATEWAY_POLICIES=/app/policies

WORKDIR /app

# Dependencies first, from the hashed lock (scripts/lock), so code edits keep the large layer.
COPY requirements/runtime.txt requirements/runtime.txt
# --no-deps: the lock is the whole resolved set (scripts/_setup.sh says why); `pip check` proves it.
RUN pip install --no-cache-dir --no-deps --require-hashes -r requirements/runtime.txt && pip check

# The lock holds the build backend: the project builds without fetching anything unhashed.
# `pip check` fails the build when the lock no longer satisfies pyproject.toml.
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY config ./config
COPY policies ./policies
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && pip check \
    && rm -rf build gateway.egg-info \
    && useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin gateway

# Numeric, so Kubernetes can verify runAsNonRoot. /app stays root-owned: the gateway only reads it
# (it writes nothing but temporary files).
USER 10001:10001
EXPOSE 8000

# The slim image has no curl; the interpreter is already there.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

# A public bind needs authentication: pass GATEWAY_MASTER_KEY (or list hashed keys in the config).
# Without keys `gateway serve` refuses 0.0.0.0 and exits with a message saying so (docs/security.md).
# SIGTERM drains: accepted requests get GATEWAY_SHUTDOWN_GRACE_S to finish (docs/reliability.md).
ENTRYPOINT ["gateway", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
