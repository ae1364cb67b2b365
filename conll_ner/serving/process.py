"""The serve step in a child process, for code that needs a server for a
while (the tests of the serve step, the benchmark harness's serving_http
mode): scripts/serve.py, or `spacy project run serve`, of a project folder
on a free loopback port, handed over once GET /health says it is ready."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

from conll_ner.project import project_run_args


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str, timeout: float = 10) -> Tuple[int, Any]:
    """(status, answer) of a GET: its JSON, or its text where it is not JSON
    (a proxy's own error page)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf8", "replace")


@contextmanager
def running_server(
    project_dir: Path,
    args: Sequence[str],
    log: Path,
    timeout: float = 300,
    project_command: Optional[Dict[str, str]] = None,
) -> Iterator[Tuple[str, subprocess.Popen]]:
    """scripts/serve.py of the project at `project_dir` with `args` on a
    free loopback port, in a session of its own, once GET /health says it
    is ready: (base URL, process). With
    `project_command` (vars), `spacy project run serve` starts it instead.
    On the way out the server gets SIGTERM (through the project command,
    the whole session, as weasel passes no signal on), and its whole session
    SIGKILL if it has not stopped after a minute."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project_dir), os.environ.get("PYTHONPATH", "")])}
    if project_command is None:
        command = [sys.executable, "scripts/serve.py", *args, "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = project_run_args(project_dir, "serve", {**project_command, "host": "127.0.0.1", "port": str(port)})
    url = f"http://127.0.0.1:{port}/"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=project_dir, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server stopped ({process.returncode}): {log.read_text()[-3000:]}")
            try:
                status, answer = get_json(url + "health", timeout=5)
            except OSError:
                status, answer = None, None
            if status == 200:
                break
            if isinstance(answer, dict) and answer.get("status") == "failed":
                raise RuntimeError(f"the server could not load its pipeline: {answer['error']}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready after {timeout:.0f} s: {log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, process
    finally:
        if process.poll() is None:
            if project_command is None:
                process.send_signal(signal.SIGTERM)
            else:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                pass
        # what is left of its session (the server under weasel, Ray's agents)
        # gets a few seconds more, then SIGKILL
        deadline = time.monotonic() + 10
        while session_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def session_alive(session: int) -> bool:
    try:
        os.killpg(session, 0)
    except ProcessLookupError:
        return False
    return True
