# gateway: OpenAI-compatible LLM gateway. Build: docker build -t gateway .
# Run:   docker run -p 8000:8000 -e OPENAI_API_KEY=... -v $PWD/config:/app/config gateway \
#          --host 0.0.0.0 --port 8000
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    GATEWAY_CONFIG=/app/config/gateway.yaml \
    GATEWAY_POLICIES=/app/policies

WORKDIR /app

# Dependencies first so code edits do not invalidate the (large) dependency layer.
COPY pyproject.toml README.md ./
COPY gateway/__init__.py gateway/__init__.py
RUN pip install . && pip uninstall -y gateway

COPY gateway ./gateway
COPY config ./config
COPY policies ./policies
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin gateway \
    && chown -R gateway:gateway /app

USER gateway
EXPOSE 8000

# The slim image has no curl; the interpreter is already there.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

# A public bind needs authentication: pass GATEWAY_MASTER_KEY (or list hashed keys in the config).
# Without keys `gateway serve` refuses 0.0.0.0 and exits with a message saying so (docs/security.md).
ENTRYPOINT ["gateway", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
