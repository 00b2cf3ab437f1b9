# One image for the API and the workers (compose.yaml, docs/scaling.md).
FROM python:3.11-slim
# The sandbox's layers: bubblewrap (namespaces) and libseccomp (docs/sandbox.md).
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap libseccomp2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# Editable: the server reads migrations/ and docs/operations/ beside its code.
RUN pip install --no-cache-dir -e .
ENV HOST=0.0.0.0
CMD ["python", "-m", "server"]
