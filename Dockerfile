# mqtt-tls-probe: the probe command in a container. The same image runs the
# in-cluster smoke test and exporter (deploy/kubernetes) and the harness broker
# (docker-compose.yml): ENTRYPOINT is probe, the arguments say what to do.
#
# Stage 1 builds the wheel and exports the runtime dependencies exactly as
# uv.lock pins them; stage 2 installs only those into a clean image: no source
# tree, no uv, no build tools.

FROM python:3.11-slim AS build
# uv pinned, so that the wheel and the export come from a known version.
RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
RUN uv build --wheel --out-dir /dist \
    && uv export --quiet --locked --no-dev --no-emit-project --format requirements-txt \
        --output-file /dist/requirements.txt

FROM python:3.11-slim
LABEL org.opencontainers.image.title="mqtt-tls-probe" \
      org.opencontainers.image.description="Can a client reach this MQTT broker over TLS, and if not, exactly why?" \
      org.opencontainers.image.licenses="MIT"
# A fixed, numeric non-root user: the pods of deploy/kubernetes run as
# 10001:10001, and a numeric USER lets the kubelet check runAsNonRoot.
RUN groupadd --system --gid 10001 probe \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin probe
# The locked dependencies, hash-checked, then the wheel without resolving
# anything again. pip compiles the bytecode here, at build time.
COPY --from=build /dist /tmp/dist
RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        --require-hashes -r /tmp/dist/requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        --no-deps /tmp/dist/mqtt_tls_probe-*.whl \
    && rm -rf /tmp/dist
# Nothing is written outside /tmp at run time: HOME is /tmp (an emptyDir in
# the pods, whose root file system is read-only) and no bytecode is cached.
ENV HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
# 18883: probe broker (docker-compose.yml); 9883: probe exporter.
EXPOSE 18883 9883
ENTRYPOINT ["probe"]
CMD ["--help"]
