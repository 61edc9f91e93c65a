"""Tests of the optional extras (torchvision, timm) and of the peer that needs them (pytorch-grad-cam).

They run in ``.venv-extras`` (``make test-extras``: torch 2.14.1 with torchvision 0.29.1, timm, grad-cam) and skip
in ``.venv``, whose CPU-only torch 2.13.0 has no torchvision that imports. Nothing is downloaded: the timm ViT is
built here and saved to a folder, the torchvision weights are written into the cache the loader reads first.
"""
