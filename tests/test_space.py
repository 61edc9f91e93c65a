"""The Hugging Face Space: a Docker Space whose image installs and starts Glimpse with the repository's own
scripts (.ci/space-check runs those scripts in a fresh environment; this checks how the image uses them)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert block, "README.md starts with the Space's YAML front matter"
    return dict(line.split(": ", 1) for line in block.group(1).splitlines())


def dockerfile() -> list[str]:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_the_space_is_a_docker_space_on_the_apps_port():
    meta = front_matter()
    assert meta["sdk"] == "docker" and meta["app_port"] == "8501"
    assert "sdk_version" not in meta and "app_file" not in meta  # Streamlit-SDK keys, ignored by Docker Spaces


def test_the_image_is_pinned_runs_as_a_user_and_uses_the_repository_scripts():
    lines = dockerfile()
    base = next(line for line in lines if line.startswith("FROM "))
    assert re.fullmatch(r"FROM python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] != "USER root"
    # installs after USER: the caches (HF_HOME, TORCH_HOME) are in the user's writable home
    assert lines.index(user[-1]) < next(i for i, line in enumerate(lines) if "install.sh deps" in line)
    assert any(re.search(r"HF_HOME=/home/user/", line) for line in lines)
    assert "RUN docker/install.sh deps" in lines and any(
        line.startswith("RUN docker/install.sh package") for line in lines
    )
    assert "EXPOSE 8501" in lines and lines[-1] == 'CMD ["docker/start.sh"]'


def test_the_start_script_serves_the_app_on_8501_on_every_interface():
    script = (ROOT / "docker" / "start.sh").read_text(encoding="utf-8")
    assert "PORT:-8501" in script and "--server.address 0.0.0.0" in script and "run app.py" in script


def test_the_scripts_are_executable_and_reject_an_unknown_step():
    for name in ("docker/install.sh", "docker/start.sh", ".ci/space-check"):
        assert (ROOT / name).stat().st_mode & 0o111, f"{name} is not executable"
    proc = subprocess.run(["bash", str(ROOT / "docker" / "install.sh"), "bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_the_build_context_leaves_out_local_environments():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", ".git", ".train"} <= set(ignored)
