"""Shared set-up for the browser tests and the screenshot script: the real server binary on a free
loopback port with a fresh data folder, headless Chromium through Selenium (each browser its own
profile, so its own IndexedDB: its own device), and the Swift `securechat` CLI as another user.
"""

from __future__ import annotations

import base64
import json
import re
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".build" / "debug"
PASSWORD = "correct horse battery"
WAIT = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find(names: list[str]) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = find(["chromium", "chromium-browser", "google-chrome"])
CHROMEDRIVER = find(["chromedriver"])


class TurnServer:
    """A local coturn with a shared secret (the TURN REST scheme), relaying on loopback only."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="securechat-turn-"))
        self.port = free_port()
        self.secret = os.urandom(24).hex()
        self.secret_file = self.folder / "turn-secret"
        self.secret_file.write_text(self.secret + "\n")
        self.secret_file.chmod(0o600)
        self.log = open(self.folder / "turnserver.log", "wb")
        self.process = subprocess.Popen(
            [TURNSERVER, "-n", "--listening-ip=127.0.0.1", f"--listening-port={self.port}", "--relay-ip=127.0.0.1",
             "--use-auth-secret", f"--static-auth-secret={self.secret}", "--realm=securechat.test", "--allow-loopback-peers",
             "--no-tls", "--no-dtls", "--no-cli", "--fingerprint", "--log-file=stdout", "--simple-log",
             f"--pidfile={self.folder / 'turnserver.pid'}", f"--db={self.folder / 'turndb'}",
             f"--min-port={49152 + self.port % 1000 * 10}", f"--max-port={49152 + self.port % 1000 * 10 + 9}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError("coturn did not start; see " + str(self.folder / "turnserver.log"))

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TURNSERVER = find(["turnserver"])


class Server:
    def __init__(self, extra_arguments: list[str] | None = None) -> None:
        self.extra_arguments = extra_arguments or []
        self.folder = Path(tempfile.mkdtemp(prefix="securechat-browser-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(self.folder / "server.log", "ab")
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(BUILD / "securechat-server"), "serve", "--port", str(self.port), "--data-dir", str(self.folder / "data"),
             "--web-dir", str(ROOT / "Web"), "--bcrypt-cost", "10",
             # Every browser and CLI user here registers from 127.0.0.1, many within a minute; the
             # other limits stay at their defaults, which a real web client must live with.
             "--rate-limits", "password_checks_per_address=1000/10", *self.extra_arguments],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not become ready; see " + str(self.folder / "server.log"))

    def metric(self, series: str) -> float:
        """One series of /metrics, read with the token the server generated in its data folder."""
        token = (self.folder / "data" / "secrets" / "metrics-token").read_text().strip()
        request = urllib.request.Request(self.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(series + " "):
                    return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{series} is not in /metrics")

    def halt(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self.halt()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class WireProxy:
    """A man in the middle on loopback between one browser and the server: everything passes
    unchanged, except that the server's `message` frames (stored deliveries) can be held back,
    recorded, altered or swapped, as a hostile server or network could. Every other frame passes,
    and the `accepted` frames are counted (the browser's sends the server took)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.recorded: list[dict] = []
        self.recording = False
        self.holding = False
        self.held: list[tuple[socket.socket, bytes]] = []
        self.tamper_next = False
        self.replacement: dict | None = None
        self.altered: list[dict] = []
        self.accepted = 0
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def stop(self) -> None:
        self.closed = True
        self.listener.close()
        for end in self.sockets:
            end.close()

    def hold(self) -> None:
        with self.lock:
            self.holding = True

    def release(self) -> None:
        # Under the lock, so that no newer frame overtakes the held ones on their socket.
        with self.lock:
            self.holding = False
            held, self.held = self.held, []
            for client, frame in held:
                try:
                    client.sendall(frame)
                except OSError:
                    pass

    def held_messages(self) -> int:
        with self.lock:
            return len(self.held)

    def accept_loop(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.server.port))
            self.sockets += [client, upstream]
            threading.Thread(target=self.pipe, args=(client, upstream, self.without_extensions), daemon=True).start()
            threading.Thread(target=self.downstream, args=(upstream, client), daemon=True).start()

    @staticmethod
    def without_extensions(chunk: bytes) -> bytes:
        """Browser to server: the proxy reads and rewrites the server's frames, so, as RFC 6455
        asks of an intermediary that does, it takes out the extensions the browser offers
        (permessage-deflate) and the connection stays uncompressed."""
        if re.search(rb"(?im)^upgrade:\s*websocket", chunk):
            return re.sub(rb"(?im)^sec-websocket-extensions:[^\r\n]*\r\n", b"", chunk)
        return chunk

    @staticmethod
    def pipe(source: socket.socket, target: socket.socket, rewrite=lambda chunk: chunk) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(rewrite(chunk))
        except OSError:
            pass
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def downstream(self, upstream: socket.socket, client: socket.socket) -> None:
        """Server to browser: plain bytes, or after a `101 Switching Protocols`, frame by frame."""
        buffer = b""
        try:
            while b"\r\n\r\n" not in buffer:
                chunk = upstream.recv(65536)
                if not chunk:
                    raise OSError("closed")
                buffer += chunk
            head, _, rest = buffer.partition(b"\r\n\r\n")
            client.sendall(head + b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                client.sendall(rest)
                self.pipe(upstream, client)
                return
            buffer = rest
            while True:
                frame, buffer = self.next_frame(upstream, buffer)
                self.forward(client, frame)
        except Exception:  # noqa: BLE001 - any failure ends this connection, visibly to the browser
            for end in (upstream, client):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @staticmethod
    def next_frame(upstream: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
        def need(count: int) -> None:
            nonlocal buffer
            while len(buffer) < count:
                chunk = upstream.recv(65536)
                if not chunk:
                    raise OSError("closed")
                buffer += chunk
        need(2)
        length = buffer[1] & 0x7F
        header = 2 + {126: 2, 127: 8}.get(length, 0)
        need(header)
        if length == 126:
            length = int.from_bytes(buffer[2:4], "big")
        elif length == 127:
            length = int.from_bytes(buffer[2:10], "big")
        need(header + length)
        return buffer[:header + length], buffer[header + length:]

    @staticmethod
    def encode_text(payload: bytes) -> bytes:
        length = len(payload)
        if length < 126:
            return bytes([0x81, length]) + payload
        if length < 1 << 16:
            return bytes([0x81, 126]) + length.to_bytes(2, "big") + payload
        return bytes([0x81, 127]) + length.to_bytes(8, "big") + payload

    def forward(self, client: socket.socket, frame: bytes) -> None:
        message = None
        if frame[0] == 0x81:  # a whole text frame (servers do not mask)
            header = 2 + {126: 2, 127: 8}.get(frame[1] & 0x7F, 0)
            try:
                message = json.loads(frame[header:])
            except ValueError:
                message = None
        with self.lock:
            if isinstance(message, dict) and message.get("type") == "accepted":
                self.accepted += 1
            if isinstance(message, dict) and message.get("type") == "message":
                if self.recording:
                    self.recorded.append(dict(message))
                if self.tamper_next:
                    self.tamper_next = False
                    ciphertext = bytearray(base64.b64decode(message["ciphertext"]))
                    ciphertext[len(ciphertext) // 2] ^= 0x01
                    message["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
                    self.altered.append(message)
                    frame = self.encode_text(json.dumps(message).encode())
                elif self.replacement is not None:
                    # A new delivery (its own seq) carrying an old ciphertext: a replay.
                    message["ciphertext"] = self.replacement["ciphertext"]
                    message["clientMessageId"] = self.replacement["clientMessageId"]
                    self.replacement = None
                    self.altered.append(message)
                    frame = self.encode_text(json.dumps(message).encode())
                if self.holding:
                    self.held.append((client, frame))
                    return
            client.sendall(frame)


class Browser:
    """One headless Chromium: one device. Helpers speak in the page's own labels and data-test names."""

    def __init__(self, server: Server, width: int = 1280, height: int = 860, downloads: Path | None = None, media: bool = False,
                 via: "WireProxy | None" = None) -> None:
        options = Options()
        options.binary_location = CHROMIUM
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                         "--disable-gpu", "--lang=en-US"]:
            options.add_argument(argument)
        if media:
            # A synthetic camera and microphone, granted without a prompt; sound may start unprompted.
            for argument in ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"]:
                options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.downloads = downloads or Path(tempfile.mkdtemp(prefix="securechat-downloads-"))
        options.add_experimental_option("prefs", {"download.default_directory": str(self.downloads), "download.prompt_for_download": False})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_window_size(width, height)
        self.server = server
        self.driver.get((via.url if via else server.url) + "/")

    def quit(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.downloads, ignore_errors=True)

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    # ---- waiting and finding

    def wait(self, condition, timeout: float = WAIT, message: str = ""):
        def safe(driver):
            try:
                return condition(driver)
            except StaleElementReferenceException:
                return False
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(safe)
        except TimeoutException:
            raise AssertionError(f"timed out: {message}\npage text:\n{self.text()[:2000]}\nconsole errors: {self.console_errors()}")

    def el(self, selector: str, timeout: float = WAIT):
        return self.wait(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()), None), timeout, f"element {selector}")

    def test(self, name: str, timeout: float = WAIT):
        return self.el(f'[data-test="{name}"]', timeout)

    def choose_file(self, name: str, path: Path) -> None:
        """Gives a file to a (hidden) file input once the page has rendered it."""
        field = self.wait(lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, f'[data-test="{name}"]')), None), message=f"file input {name}")
        field.send_keys(str(path))

    def click(self, name: str, timeout: float = WAIT) -> None:
        """Clicks a data-test element, finding it again if the page re-rendered it meanwhile."""
        def attempt(driver):
            self.test(name, timeout).click()
            return True
        self.wait(attempt, timeout, f"click {name}")

    def text(self) -> str:
        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except Exception:  # noqa: BLE001 - only for diagnostics
            return ""

    def wait_text(self, text: str, timeout: float = WAIT) -> None:
        self.wait(lambda d: text in self.text(), timeout, f"text {text!r}")

    def messages(self) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, '[data-test="message-text"]')]

    def wait_message(self, text: str, timeout: float = WAIT) -> None:
        self.wait(lambda d: text in self.messages(), timeout, f"message {text!r}")

    # ---- flows

    def register(self, username: str) -> None:
        self.test("tab-register").click()
        self.el("#auth-username").send_keys(username)
        self.el("#auth-password").send_keys(PASSWORD)
        self.test("auth-submit").click()
        self.wait(lambda d: d.find_element(By.CSS_SELECTOR, '[data-test="connection"]').text == "Online", message="online after registering")

    def login(self, username: str) -> None:
        self.el("#auth-username").send_keys(username)
        self.el("#auth-password").send_keys(PASSWORD)
        self.test("auth-submit").click()
        self.wait(lambda d: d.find_element(By.CSS_SELECTOR, '[data-test="connection"]').text == "Online", message="online after signing in")

    def dialog_confirm(self) -> None:
        self.test("dialog-confirm").click()

    def start_chat(self, username: str) -> None:
        self.test("new-chat").click()
        self.test("new-chat-username").send_keys(username)
        self.dialog_confirm()
        self.wait(lambda d: self.test("chat-title").text == username, message=f"chat with {username}")

    def open_conversation(self, title: str) -> None:
        self.click(f"conversation-{title}")
        self.wait(lambda d: self.test("chat-title").text == title, message=f"conversation {title}")

    def create_room(self, name: str, password: str | None = None) -> str:
        self.test("create-room").click()
        self.test("room-name").send_keys(name)
        if password:
            self.test("room-password").send_keys(password)
        self.dialog_confirm()
        code = self.test("room-code").text.removeprefix("Code ").strip()
        assert len(code) == 20, code
        return code

    def join_room(self, code: str, password: str | None = None) -> None:
        self.test("join-room").click()
        self.test("join-code").send_keys(code)
        if password:
            self.test("join-password").send_keys(password)
        self.dialog_confirm()
        self.test("room-code")

    def send(self, text: str) -> None:
        composer = self.test("composer")
        composer.send_keys(text)
        self.test("send").click()
        self.wait_message(text)

    def status_of(self, text: str) -> str | None:
        for message in self.driver.find_elements(By.CSS_SELECTOR, '[data-test="message"]'):
            texts = [e.text for e in message.find_elements(By.CSS_SELECTOR, '[data-test="message-text"]')]
            if text in texts:
                marks = message.find_elements(By.CSS_SELECTOR, '[data-test="status"]')
                return marks[0].get_attribute("data-status") if marks else None
        return None


class CLI:
    """The Swift command-line client as a second kind of user, in its own home folder."""

    def __init__(self, server: Server, username: str) -> None:
        self.home = Path(tempfile.mkdtemp(prefix=f"securechat-cli-{username}-"))
        self.env = {**os.environ, "SECURECHAT_SERVER": server.url, "SECURECHAT_PASSWORD": PASSWORD,
                    "SECURECHAT_PASSPHRASE": "a local passphrase", "SECURECHAT_HOME": str(self.home)}
        self.username = username

    def run(self, *arguments: str, timeout: float = 60) -> str:
        result = subprocess.run([str(BUILD / "securechat"), *arguments], env=self.env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"securechat {' '.join(arguments)} failed: {result.stderr.strip()}")
        return result.stdout

    def listen(self, count: int, timeout: float = 30) -> list[dict]:
        output = self.run("listen", "--json", "--count", str(count), "--timeout", str(timeout), timeout=timeout + 30)
        return [json.loads(line) for line in output.splitlines() if line.strip().startswith("{")]

    def cleanup(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
