"""The package builds cleanly: no setuptools warnings, and the wheel carries its data."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_wheel_builds_without_warnings_and_holds_every_template_static_and_data_file(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    output = built.stdout + built.stderr
    assert "Warning" not in output and "is absent from the `packages`" not in output, output
    (wheel,) = tmp_path.glob("regbackoffice-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "regbackoffice"
    expected = {
        path.relative_to(ROOT).as_posix()
        for folder in ("templates", "static", "data")
        for path in (package / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert len(expected) > 50 and expected <= names, sorted(expected - names)
    # Only the app goes into the wheel (not tests, scripts or the project folder's files).
    assert {name.split("/")[0] for name in names} == {
        "regbackoffice",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
