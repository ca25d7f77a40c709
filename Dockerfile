# Inference image: reads /data/test.parquet, the detector mounted at /artifacts,
# writes /data/submission.csv.
#   docker build -t esa-lightning .
#   docker run --rm -v $PWD/data:/data -v $PWD/outputs/esa_full/<run>/detector:/artifacts esa-lightning
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
WORKDIR /app

# CPU build of torch first: the default wheel would pull the multi-GB CUDA build.
RUN pip install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cpu

# no train.py here: the package's messages name the installed commands (esa-train ...)
COPY pyproject.toml README.md ./
COPY esa_lightning ./esa_lightning
# the Hydra plugin registering the configs' resolvers (pyproject.toml ships it too)
COPY hydra_plugins ./hydra_plugins
RUN pip install --no-cache-dir . && useradd --create-home runner
USER runner

ENTRYPOINT ["python", "-m", "esa_lightning.jobs.container"]
CMD ["--data", "/data", "--artifacts", "/artifacts"]
