"""The annotation tools' stage: a real Label Studio server and FiftyOne's importers, from the
tools' own environment (``make tools``: ``.venv-tools``, or ``$AL_TOOLS_VENV``).

The tests run in the project's environment (torch, the rounds); what runs in the tools'
environment, the server and the SDK calls (``studio_driver.py``) or FiftyOne's importers, is
started as a subprocess. The server listens on 127.0.0.1 on a free port, with a data folder of
its own under the test's temporary folder (a copy of the migrated database ``make tools``
prepares, so it starts in seconds), and is stopped, and its folder removed, when the session
ends, whether the tests passed or not.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import torch

import studio_setup

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))        # the core suite's helpers (label_exports, ...)
TOOLS = Path(os.environ.get("AL_TOOLS_VENV", ROOT / ".venv-tools"))
TEMPLATE = TOOLS / studio_setup.TEMPLATE       # a migrated data folder (make tools)
TOKEN = studio_setup.TOKEN
DRIVER = Path(__file__).with_name("studio_driver.py")

torch.set_num_threads(1)


def tools_python() -> Path:
    python = TOOLS / "bin" / "python"
    if not python.exists():
        pytest.fail(f"the tools' environment {TOOLS} is missing: run 'make tools' (it installs "
                    "label-studio, label-studio-sdk and fiftyone there)", pytrace=False)
    return python


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Studio:
    """A running Label Studio server and the SDK calls made to it: one ``studio_driver.py``
    process in the tools' environment, a JSON request and answer a line."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.driver = subprocess.Popen([str(tools_python()), str(DRIVER), url, TOKEN],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, start_new_session=True)

    def call(self, command: str, **arguments: object) -> dict:
        assert self.driver.stdin is not None and self.driver.stdout is not None
        self.driver.stdin.write(json.dumps({"command": command, "arguments": arguments},
                                           default=str) + "\n")
        self.driver.stdin.flush()
        line = self.driver.stdout.readline()
        if not line:
            raise AssertionError(f"the Label Studio driver stopped at {command}")
        reply = json.loads(line)
        if "error" in reply:
            raise AssertionError(f"label studio {command} failed:\n{reply['error'][-3000:]}")
        return reply["answer"]

    def close(self) -> None:
        if self.driver.stdin is not None:
            self.driver.stdin.close()          # the driver ends at the end of its input
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            _stop(self.driver)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process's group (its own session), SIGKILL after 20 s."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def studio():
    """A Label Studio server on 127.0.0.1 for the session; stopped and its folder removed at
    the end, whatever happened."""
    executable = TOOLS / "bin" / "label-studio"
    tools_python()
    folder = Path(tempfile.mkdtemp(prefix="label-studio-"))
    process = None
    try:
        data = folder / "data"
        if TEMPLATE.is_dir():
            shutil.copytree(TEMPLATE, data)
        port = _free_port()
        env = {**os.environ, "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
               "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(folder),
               "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "SENTRY_DSN": "",
               "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false",
               "LATEST_VERSION_CHECK": "false"}
        with open(folder / "server.log", "w") as log:
            process = subprocess.Popen(
                [str(executable), "start", "--data-dir", str(data), "--port", str(port),
                 "--internal-host", "127.0.0.1", "--no-browser", *studio_setup.user_flags()],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder,
                start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + (60 if TEMPLATE.is_dir() else 240)
        while True:
            if process.poll() is not None:
                raise AssertionError("Label Studio stopped at start:\n"
                                     + (folder / "server.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("Label Studio did not answer /health in time:\n"
                                     + (folder / "server.log").read_text()[-3000:])
            time.sleep(1)
        client = Studio(url)
        try:
            yield client
        finally:
            client.close()
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """As in the core suite: caches in the session's folder, and no weights download."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch"))
    monkeypatch.setenv("ACTIVE_LEARNING_OFFLINE", "1")
