# The container image of one service: services/$SERVICE, entrypoint pizza-$SERVICE.
#   podman build -f Dockerfile --build-arg SERVICE=bake -t pizza-bake .
# (scripts/images/build-images.sh builds them all, also where no registry is reachable.)
# The context is the repository root; .dockerignore lets in only what a build needs.
ARG PYTHON_IMAGE=python:3.12-slim

# Stage 1: a virtual environment with the service and exactly the versions of uv.lock
# (uv sync --frozen: the lock is not re-resolved, a stale one fails the build), its
# workspace packages installed as non-editable wheels. No dev dependencies.
FROM ${PYTHON_IMAGE} AS venv
ARG SERVICE
ARG UV_VERSION=0.13.9
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<a folder of services/>" >&2; exit 1; }
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 UV_NATIVE_TLS=1
RUN python3 -m pip install --break-system-packages "uv==${UV_VERSION}" \
 || python3 -m pip install "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY tools tools
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    test -f "services/${SERVICE}/pyproject.toml" || { echo "no such service: services/${SERVICE}" >&2; exit 1; }; \
    uv sync --frozen --no-dev --no-editable --package "pizza-${SERVICE}" --python "$(command -v python3)" \
 && test -x "/opt/venv/bin/pizza-${SERVICE}" \
 && ln -s "pizza-${SERVICE}" /opt/venv/bin/pizza-service

# Stage 2: the runtime image: the base image plus the virtual environment.
# Runs as a non-root numeric user and needs no writable directory but /tmp, so
# it works with a read-only root file system and an emptyDir on /tmp.
FROM ${PYTHON_IMAGE}
ARG SERVICE
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="pizza-${SERVICE}" \
      org.opencontainers.image.description="Pizza shop on Kafka: the ${SERVICE} service (services/${SERVICE})" \
      org.opencontainers.image.source="${SOURCE_URL}"
COPY --from=venv /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HTTP_PORT=8080 \
    LOG_FORMAT=json \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080
# Exec form (the service is PID 1 and gets SIGTERM itself), which expands no build argument:
# pizza-service is a link to the service's console script, pizza-${SERVICE}.
ENTRYPOINT ["pizza-service"]
