# The harness broker (probe broker) in a container; see docker-compose.yml.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /
EXPOSE 18883
CMD ["probe", "broker", "--host", "0.0.0.0", "--port", "18883", "--certs", "/certs"]
