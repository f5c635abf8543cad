"""The tools' stage's Label Studio: its test user, and the migrated data folder ``make tools``
prepares once (``label-studio init``, about a minute of migrations), which each test session
copies so that its server starts in seconds.

    python tests_tools/studio_setup.py TOOLS_VENV
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

USER, PASSWORD, TOKEN = "tests@example.com", "round-trip-1", "round-trip-token"
TEMPLATE = "label-studio-template"


def user_flags() -> list[str]:
    """The test user (a legacy API token, so that the SDK authenticates with it)."""
    return ["--username", USER, "--password", PASSWORD, "--user-token", TOKEN,
            "--enable-legacy-api-token"]


def make_template(tools: Path) -> Path:
    """``tools``/label-studio-template: a data folder with the database migrated and the test
    user created; rebuilt from scratch (moved into place when whole)."""
    target = tools / TEMPLATE
    draft = Path(tempfile.mkdtemp(prefix="template-", dir=tools))
    try:
        subprocess.run([str(tools / "bin" / "label-studio"), "init", "--data-dir",
                        str(draft / "data"), *user_flags()], check=True,
                       stdout=subprocess.DEVNULL, timeout=900, cwd=draft,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(draft),
                            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
                            "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false"})
        shutil.rmtree(target, ignore_errors=True)
        (draft / "data").rename(target)
    finally:
        shutil.rmtree(draft, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(make_template(Path(sys.argv[1]).resolve()))
