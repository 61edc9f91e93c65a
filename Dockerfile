# Glimpse as a Hugging Face Docker Space (README front matter: sdk: docker, app_port: 8501); also runs
# anywhere with `docker build -t glimpse . && docker run -p 8501:8501 glimpse`.
# CPU by default. On a GPU Space, set the Space variable TORCH_INDEX_URL to a CUDA wheel index
# (e.g. https://download.pytorch.org/whl/cu128): Spaces pass variables to the build as build args.
FROM python:3.11.12-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# Spaces run the container as uid 1000; the app and every cache live in that user's home.
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/home/user/.cache/huggingface \
    TORCH_HOME=/home/user/.cache/torch \
    MPLCONFIGDIR=/home/user/.cache/matplotlib
WORKDIR /home/user/app

# Requirements first, so a code change does not reinstall them.
RUN python -m venv /home/user/.venv
ENV PATH=/home/user/.venv/bin:$PATH
COPY --chown=user requirements.txt ./
COPY --chown=user docker/install.sh docker/install.sh
RUN docker/install.sh deps

COPY --chown=user . .
RUN docker/install.sh package && mkdir -p "$HF_HOME" "$TORCH_HOME" "$MPLCONFIGDIR"

EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=5)"
CMD ["docker/start.sh"]
