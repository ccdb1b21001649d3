# One image for every WiltonOS process (router, exporter, coherence, insight); compose picks the
# console script per service. Secrets come from the environment at run time, never from the image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wilton_core ./wilton_core
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 wilton \
 && mkdir -p /data /reports \
 && chown wilton:wilton /data /reports
COPY --from=build /install /usr/local
USER wilton
WORKDIR /home/wilton
ENV WILTON_HOST=0.0.0.0 \
    WILTON_DATA_DIR=/data \
    WILTON_REPORTS_DIR=/reports \
    WILTON_STORE_URL=sqlite:////data/wilton.db \
    PYTHONUNBUFFERED=1
VOLUME ["/data", "/reports"]
EXPOSE 8080 8000 8001
CMD ["wilton-router"]
