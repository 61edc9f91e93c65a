"""Upload limits (issue 25): the uploaders said Streamlit's default "200MB per file" where the app takes up to
50 megapixels. One limit, in the config and in every image uploader's label."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from components.image_input import IMAGE_LIMITS, UPLOAD_MB
from glimpse.images import MAX_PIXELS
from tests.apptest_support import open_page

ROOT = Path(__file__).resolve().parents[2]


def test_the_server_limit_is_the_apps_and_holds_the_largest_image_it_reads():
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == UPLOAD_MB
    assert UPLOAD_MB * 2**20 >= 3 * MAX_PIXELS  # an uncompressed 8-bit RGB image at the pixel limit fits
    assert UPLOAD_MB < 200  # not Streamlit's default
    assert IMAGE_LIMITS == f"at most {MAX_PIXELS / 1e6:.0f} megapixels and {UPLOAD_MB} MB per file"


def test_the_docker_image_runs_with_the_same_config():
    """The Space runs docker/start.sh from the app folder, which holds .streamlit/config.toml: nothing there may
    set another limit."""
    for name in ("Dockerfile", "docker/start.sh"):
        assert "maxUploadSize" not in (ROOT / name).read_text(), name
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not any(p.strip("/").startswith(".streamlit") for p in ignored)


def test_image_uploaders_state_the_limits():
    at = open_page("app_pages/home.py")
    at.radio(key="home_source").set_value("Upload").run()
    at_dc = open_page("app_pages/diffusion_classifier.py")
    at_dc.radio(key="dc_source").set_value("Upload").run()
    for page in (at, at_dc):
        assert not page.exception, page.exception
        labels = [u.proto.label for u in page.get("file_uploader")]
        assert labels and all(IMAGE_LIMITS in label for label in labels), labels
