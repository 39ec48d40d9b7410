"""Regenerates docs/screenshots/ from the real application: a server, four users (three browsers
and the Swift CLI), a room and a direct conversation with a picture, a 1:1 and a room video call,
then the main screens at desktop and phone widths, in light and dark themes.

    python3 Tests/Browser/screenshots.py          (after swift build; needs chromium and selenium)
"""

from __future__ import annotations

import struct
import tempfile
import time
import zlib
from pathlib import Path

from harness import CLI, ROOT, Browser, Server

OUT = ROOT / "docs" / "screenshots"


def picture(path: Path, width: int = 360, height: int = 220) -> None:
    """A small PNG (a sunset gradient) written by hand, so no imaging library is needed."""
    rows = b""
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            sun = max(0, 255 - int(((x - 250) ** 2 + (y - 150) ** 2) ** 0.5 * 3))
            row += bytes([min(255, 90 + y // 2 + sun), min(255, 60 + x // 6 + sun // 2), max(0, 160 - y // 2)])
        rows += row
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def shot(browser: Browser, name: str) -> None:
    # Toasts fade after a few seconds; a screenshot shows the screen, not the notifications.
    browser.driver.execute_script("document.getElementById('toasts')?.replaceChildren()")
    time.sleep(0.6)
    browser.driver.save_screenshot(str(OUT / f"{name}.png"))
    print("wrote", OUT / f"{name}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    server = Server()
    browsers: list[Browser] = []
    carol = CLI(server, "carol")
    try:
        signin = Browser(server)
        browsers.append(signin)
        signin.test("tab-register").click()
        signin.el("#auth-username").send_keys("alice")
        shot(signin, "desktop-sign-in")

        carol.run("register", "carol")
        alice = Browser(server, media=True)
        browsers.append(alice)
        alice.register("alice")
        bob = Browser(server, media=True)
        browsers.append(bob)
        bob.register("bob")

        # Bob has a picture (sent encrypted to the rooms and contacts he shares).
        face = Path(tempfile.mkdtemp()) / "bob.png"
        picture(face, 96, 96)
        code = alice.create_room("Weekend plans")
        # Bob joins first: carol's device then admits everyone listed when she joins (PROTOCOL.md §14.4).
        bob.join_room(code)
        alice.wait_text("bob joined")
        carol.run("room", "join", code)
        alice.wait_text("carol joined")
        carol.run("send", f"#{code}", "Saturday works for me. Lake or mountains?")
        alice.wait_message("Saturday works for me. Lake or mountains?")
        bob.wait_message("Saturday works for me. Lake or mountains?")
        bob.test("profile").click()
        bob.choose_file("profile-picture", face)
        bob.wait_text("Picture updated.")
        bob.el('[data-test="profile-dialog"] [data-test="dialog-cancel"]').click()
        bob.send("Mountains! I'll bring the tent.")
        alice.wait_message("Mountains! I'll bring the tent.")
        alice.send("Great, I'll book the train for 8:15.")
        carol.run("send", f"#{code}", "Perfect, see you at the station")
        alice.wait_message("Perfect, see you at the station")
        react = alice.driver.find_elements("css selector", '[data-test="message"]')[1]
        alice.driver.execute_script("arguments[0].focus()", react)
        react.find_element("css selector", '[aria-label="React 👍"]').click()
        alice.wait(lambda d: d.find_elements("css selector", ".reaction"), message="reaction shown")
        alice.test("composer").send_keys("Who brings the map?")
        shot(alice, "desktop-room")

        alice.test("members-button").click()
        alice.test("members-panel")
        shot(alice, "desktop-members")
        alice.test("dialog-cancel").click()

        alice.start_chat("bob")
        alice.send("Here is the view from last time")
        image = Path(tempfile.mkdtemp()) / "lake.png"
        picture(image)
        alice.choose_file("file-input", image)
        bob.open_conversation("alice")
        bob.wait(lambda d: d.find_elements("css selector", '[data-test="image-preview"]'), message="picture shown")
        bob.send("Wow, beautiful 😍")
        alice.wait_message("Wow, beautiful 😍")
        alice.wait(lambda d: d.find_elements("css selector", '[data-test="image-preview"]'), message="picture shown")
        shot(alice, "desktop-direct")
        shot(bob, "desktop-direct-receiver")

        alice.test("safety-number-button").click()
        alice.test("safety-dialog")
        shot(alice, "desktop-safety-number")
        alice.test("dialog-cancel").click()

        # A video call with synthetic cameras: the call screen shows who, whether verified, the traffic.
        alice.test("call-video").click()
        bob.click("call-accept")
        alice.wait(lambda d: int(alice.test("call-stats").get_attribute("data-video-received") or 0) > 100_000, timeout=60, message="video flowing")
        shot(alice, "desktop-call")
        alice.click("call-hangup")
        alice.wait(lambda d: not d.find_elements("css selector", '[data-test="call-screen"]'), message="call over")

        # A room's video call among three browsers: the ringing screen, then one tile per person.
        dave = Browser(server, media=True)
        browsers.append(dave)
        dave.register("dave")
        team = alice.create_room("Design review")
        bob.join_room(team)
        dave.join_room(team)
        alice.send("Quick call about the mock-ups?")
        for browser in (bob, dave):
            browser.wait_message("Quick call about the mock-ups?")
        alice.test("call-video").click()
        bob.wait_text("alice is calling Design review (video)")
        shot(bob, "desktop-group-call-ringing")
        bob.click("call-accept")
        dave.click("call-accept")

        def both_tiles_flowing(d) -> bool:
            tiles = d.find_elements("css selector", '[data-test="call-tile"] [data-test="call-stats"]')
            return len(tiles) == 2 and all(int(t.get_attribute("data-video-received") or 0) > 100_000 for t in tiles)
        alice.wait(both_tiles_flowing, timeout=60, message="two tiles with video")
        shot(alice, "desktop-group-call")
        for browser in (alice, bob, dave):
            browser.click("call-hangup")
        alice.wait(lambda d: not d.find_elements("css selector", '[data-test="call-screen"]'), message="call over")
        alice.open_conversation("bob")

        alice.test("theme").click()
        alice.test("theme").click()
        shot(alice, "desktop-dark")
        alice.test("theme").click()

        phone = Browser(server, width=390, height=844)
        browsers.append(phone)
        phone.login("bob")
        alice.wait(lambda d: d.find_elements("css selector", '[data-test="identity-warning"]') or True)
        shot(phone, "phone-conversations")
        phone.open_conversation("Weekend plans")
        phone.send("Joining from my phone too")
        shot(phone, "phone-chat")

        # The warning alice gets when bob's new phone writes to her.
        phone.driver.find_element("css selector", ".back").click()
        phone.start_chat("alice")
        phone.send("This is bob, on my phone")
        alice.test("identity-warning")
        shot(alice, "desktop-identity-warning")
    finally:
        for browser in browsers:
            browser.quit()
        carol.cleanup()
        server.stop()


if __name__ == "__main__":
    main()
