FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY commands commands
COPY projections projections
COPY api api
COPY infrastructure infrastructure
RUN pip install --no-cache-dir . && useradd --create-home medledger
USER medledger
ENV MEDLEDGER_DATA_DIR=/home/medledger/data
EXPOSE 8000
CMD ["medledger", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-demo"]
