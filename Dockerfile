# Production image: `paris-avenir serve` behind the City's reverse proxy (TLS there,
# deploy/nginx.conf).
FROM python:3.11-slim

# The proxy's address must be given at run time (docker run -e
# PARIS_AVENIR_TRUSTED_PROXIES=10.0.0.5, or its network): without it, every client has the
# proxy's address, and the per-address sign-in limit is shared by the whole city. uvicorn's
# own proxy headers stay off (`serve` reads X-Forwarded-For only from these proxies).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARIS_AVENIR_ENV=prod \
    PARIS_AVENIR_TRUSTED_PROXIES=""

RUN useradd --create-home --uid 10001 avenir
WORKDIR /app

COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY paris_avenir ./paris_avenir
COPY migrations ./migrations
COPY alembic.ini ./
COPY templates ./templates
COPY static ./static
# Editable, so templates/, static/ and migrations/ are found beside the package.
RUN pip install --no-cache-dir -c constraints.txt -e . \
    && mkdir -p /app/var && chown avenir /app/var

USER avenir
EXPOSE 8000
# Liveness only (/readyz says whether the database and the outbox keep up). The slim image
# has no curl: Python's own urllib.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Migrations run as a separate step of the deployment: `paris-avenir migrate`.
# Two web workers and the scheduler in a process of its own (README, "Running several
# instances"); tests/test_two_instances.py starts its instances with this very command.
CMD ["paris-avenir", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
