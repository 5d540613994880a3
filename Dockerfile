# The junction image: the platform and its systems with the locked dependencies (uv.lock), run as a
# non-root user. Its entry point is `junction`: `junction manifests <system>` makes every pod run
# `junction serve <system> --service <name>` from it.
#   docker build -t junction:latest .
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
WORKDIR /app
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
COPY pyproject.toml uv.lock hatch_build.py README.md ./
COPY src src
COPY systems systems
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 junction
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH
USER 10001
WORKDIR /home/junction
ENTRYPOINT ["junction"]
CMD ["--help"]
