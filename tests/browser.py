"""Headless Chromium (Debian's package) driven over its DevTools protocol,
with the `websockets` package: open the server's page, type a text, submit
it, wait for displaCy's marks, and take a screenshot. Playwright would need
its own browser download, which an offline machine cannot make.

`python tests/browser.py URL TEXT OUT.png` takes the page's screenshot of a
running server (the one in docs/ was taken so)."""

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

CHROMIUM = next((path for path in map(shutil.which, ("chromium", "chromium-browser")) if path), None)


class Page:
    """One DevTools session on a page target."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> Dict[str, Any]:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """The value of `expression` once it is truthy."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression} was still falsy after {timeout:.0f} s")
            time.sleep(0.2)
        return value


@contextmanager
def chromium_page(width: int = 1100, height: int = 820) -> Iterator[Page]:
    """A headless Chromium in a fresh profile, and a session on its page;
    the browser is stopped on the way out."""
    from websockets.sync.client import connect

    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             f"--window-size={width},{height}", "--remote-debugging-port=0", f"--user-data-dir={profile}",
             "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes with it, to stop them all
        )  # fmt: skip
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.is_file() and port_file.read_text().strip()):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("chromium did not open its DevTools port")
                time.sleep(0.1)
            port = port_file.read_text().split()[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
                targets = json.loads(response.read())
            page = next(target for target in targets if target["type"] == "page")
            with connect(page["webSocketDebuggerUrl"], max_size=2**26) as socket:
                yield Page(socket)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            # helpers still writing into the profile would make its removal fail
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def page_entities(url: str, text: str, screenshot: Optional[Path] = None) -> List[Dict[str, str]]:
    """Open the page at `url`, type `text` and submit it as a person would;
    the entities that displaCy highlighted (each mark's text and label), and
    the page's screenshot if asked for."""
    with chromium_page() as page:
        page.call("Page.navigate", url=url)
        page.wait_for("document.readyState === 'complete' && !!document.getElementById('submit')")
        page.evaluate(f"document.getElementById('text').value = {json.dumps(text)}")
        page.evaluate("document.getElementById('submit').click()")
        page.wait_for(
            "document.querySelectorAll('#result mark.entity').length > 0 || !!document.getElementById('error').textContent"
        )
        error = page.evaluate("document.getElementById('error').textContent")
        if error:
            raise RuntimeError(f"the page says: {error}")
        marks = page.evaluate(
            "Array.from(document.querySelectorAll('#result mark.entity')).map(m => "
            "({label: m.querySelector('span').textContent.trim(), "
            "text: m.firstChild.textContent.trim()}))"
        )
        if screenshot is not None:
            shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return marks


if __name__ == "__main__":
    print(json.dumps(page_entities(sys.argv[1], sys.argv[2], Path(sys.argv[3])), indent=2))
