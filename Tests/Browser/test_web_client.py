"""The web client in a real browser (headless Chromium) against the real server binary:

    python3 -m unittest discover -s Tests/Browser -v

* a browser user and a Swift CLI user in one room read each other's messages;
* two browser users in a direct conversation: text, receipts, a file transferred and checked;
* a contact's identity change raises the blocking warning, and nothing is sent until it is accepted;
* the page's security: the CSP headers, no inline script, no token in any URL.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import unittest
from pathlib import Path

from harness import CHROMEDRIVER, CHROMIUM, CLI, Browser, Server

if not (CHROMIUM and CHROMEDRIVER):
    raise unittest.SkipTest("chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)")


class WebClientTests(unittest.TestCase):
    def setUp(self) -> None:
        self.server = Server()
        self.browsers: list[Browser] = []
        self.clis: list[CLI] = []
        # Console lines a test provokes on purpose (Chromium logs refused requests and sockets).
        self.expected_console = ["status of 4"]

    def tearDown(self) -> None:
        for browser in self.browsers:
            errors = [e for e in browser.console_errors() if not any(expected in e for expected in self.expected_console)]
            browser.quit()
            # A page that logged errors failed even if the flow passed.
            self.assertEqual(errors, [], "console errors in the page")
        for cli in self.clis:
            cli.cleanup()
        self.server.stop()

    def browser(self, **options) -> Browser:
        browser = Browser(self.server, **options)
        self.browsers.append(browser)
        return browser

    def alice_and_bob_chatting(self, first: str) -> tuple[Browser, Browser]:
        """Two browsers registered as alice and bob, with alice's first message on bob's screen."""
        alice = self.browser()
        alice.register("alice")
        bob = self.browser()
        bob.register("bob")
        alice.start_chat("bob")
        alice.send(first)
        bob.open_conversation("alice")
        bob.wait_message(first)
        return alice, bob

    def cli(self, username: str) -> CLI:
        cli = CLI(self.server, username)
        self.clis.append(cli)
        return cli

    def test_browser_and_cli_users_read_each_other_in_a_room(self) -> None:
        carol = self.cli("carol")
        carol.run("register", "carol")
        alice = self.browser()
        alice.register("alice")
        code = alice.create_room("Weekend plans", password="room secret")
        carol.env["SECURECHAT_ROOM_PASSWORD"] = "room secret"
        carol.run("room", "join", code, "--password")
        # The room was created with automatic admission: the browser admits carol when it sees her join.
        alice.wait_text("carol joined")
        carol.run("send", f"#{code}", "hello from the terminal")
        alice.wait_message("hello from the terminal")
        alice.send("hello from the browser")
        received = [m for m in carol.listen(count=1) if m.get("kind") == "text"]
        self.assertEqual([m["text"] for m in received], ["hello from the browser"])
        self.assertEqual(received[0]["from"], "alice")
        self.assertFalse(received[0]["unconfirmedSender"], "the browser's device is confirmed for the CLI")
        # Wrong room password from another browser: a clear error, no membership.
        mallory = self.browser()
        mallory.register("mallory")
        mallory.test("join-room").click()
        mallory.test("join-code").send_keys(code)
        mallory.test("join-password").send_keys("wrong")
        mallory.dialog_confirm()
        mallory.wait_text("wrong")
        self.assertNotIn("Weekend plans", mallory.test("conversation-list").text)

    def test_two_browsers_direct_chat_with_receipts_and_a_file(self) -> None:
        alice, bob = self.alice_and_bob_chatting("hi bob")
        # Bob has it on screen: alice sees it delivered, then read.
        alice.wait(lambda d: alice.status_of("hi bob") == "read", message="read receipt")
        bob.send("hello alice <b>not bold</b>")
        alice.wait_message("hello alice <b>not bold</b>")
        self.assertEqual(alice.driver.find_elements("css selector", ".bubble b"), [], "text from the network is never markup")

        # A 300 KiB file with random bytes: uploaded encrypted, downloaded and decrypted by bob.
        payload = os.urandom(300 * 1024)
        folder = Path(tempfile.mkdtemp())
        path = folder / "report.bin"
        path.write_bytes(payload)
        alice.choose_file("file-input", path)
        alice.wait(lambda d: any(e.text == "report.bin" for e in d.find_elements("css selector", '[data-test="attachment-name"]')), message="attachment sent")
        bob.wait(lambda d: any(e.text == "report.bin" for e in d.find_elements("css selector", '[data-test="attachment-name"]')), message="attachment received")
        bob.test("attachment-open").click()
        # Decrypted in bob's page, checked against digest and size, then saved by the browser.
        saved = bob.downloads / "report.bin"
        bob.wait(lambda d: saved.exists() and saved.stat().st_size == len(payload), message="the decrypted file saved")
        digest = hashlib.sha256(saved.read_bytes()).hexdigest()
        self.assertEqual(digest, hashlib.sha256(payload).hexdigest())
        # Chromium offers permessage-deflate and the server agrees: both pages' sockets are compressed.
        self.assertGreaterEqual(self.server.metric('securechat_websocket_upgrades_total{compression="deflate"}'), 2)

    def test_identity_change_blocks_until_accepted(self) -> None:
        alice, bob = self.alice_and_bob_chatting("before")
        # Bob signs out (this browser's device is removed) and signs in on a new browser: new keys.
        bob.test("logout").click()
        bob.test("dialog-confirm").click()
        bob.test("tab-login")
        bob2 = self.browser()
        bob2.login("bob")
        bob2.start_chat("alice")
        bob2.send("it is me, on a new device")
        warning = alice.test("identity-warning")
        self.assertIn("bob's security key changed", warning.text)
        # "Not now" closes the warning; sending to bob stays paused, with the reason shown.
        alice.el('[data-test="identity-warning"] [data-test="dialog-cancel"]').click()
        alice.open_conversation("bob")
        self.assertIn("Sending is paused", alice.test("sending-paused").text)
        alice.test("composer").send_keys("must not leave")
        alice.test("send").click()
        alice.wait_text("changed")
        self.assertNotIn("must not leave", alice.messages())
        # The refused text is given back in the composer, not lost.
        self.assertEqual(alice.test("composer").get_attribute("value"), "must not leave")
        alice.test("composer").clear()
        # Review: twelve groups of five digits per device, then accept exactly the keys shown.
        alice.test("safety-number-button").click()
        groups = [element.text.split() for element in alice.driver.find_elements("css selector", '[data-test="safety-digits"]')]
        self.assertEqual(len(groups), 1, "bob's only device now is the new one")
        self.assertEqual(len(groups[0]), 12)
        self.assertTrue(all(len(group) == 5 and group.isdigit() for group in groups[0]))
        alice.el('[data-test="safety-dialog"] [data-test="dialog-confirm"]').click()
        alice.wait(lambda d: not d.find_elements("css selector", '[data-test="sending-paused"]:not([hidden])'), message="sending resumed")
        alice.wait_message("it is me, on a new device")
        alice.send("welcome back")
        bob2.wait_message("welcome back")

    def test_reconnect_and_resume_across_a_server_restart(self) -> None:
        alice, bob = self.alice_and_bob_chatting("first")
        self.expected_console.append("ERR_CONNECTION_REFUSED")
        self.server.halt()
        alice.wait(lambda d: alice.test("connection").text != "Online", message="alice notices the server is gone")
        # Written while offline: kept in the browser's outbox and sent after the reconnect.
        alice.send("written while the server was down")
        self.assertEqual(alice.status_of("written while the server was down"), "pending")
        self.server.start()
        alice.wait(lambda d: alice.test("connection").text == "Online", timeout=60, message="alice reconnects")
        bob.wait_message("written while the server was down", timeout=60)
        alice.wait(lambda d: alice.status_of("written while the server was down") in ("delivered", "read"), message="delivered after the restart")
        self.assertEqual(bob.messages().count("written while the server was down"), 1, "delivered exactly once")
        # A reload keeps the device, its history and its sessions (IndexedDB).
        bob.driver.refresh()
        bob.wait(lambda d: bob.test("connection").text == "Online", message="bob back after a reload")
        bob.open_conversation("alice")
        bob.wait_message("first")
        alice.open_conversation("bob")
        alice.send("after bob reloaded")
        bob.wait_message("after bob reloaded")

    def test_replies_edits_deletions_reactions_and_typing(self) -> None:
        alice, bob = self.alice_and_bob_chatting("lunch at noon?")
        # Typing shows on the other side while the composer has text.
        alice.test("composer").send_keys("thinking")
        bob.wait(lambda d: "alice is typing" in bob.test("typing").text, message="typing indicator")
        alice.test("composer").clear()
        # Bob answers as a reply and reacts.
        message = bob.driver.find_element("css selector", '[data-test="message"]')
        bob.driver.execute_script("arguments[0].focus()", message)
        message.find_element("css selector", '[aria-label="Reply"]').click()
        bob.send("yes, at the usual place")
        alice.wait_message("yes, at the usual place")
        alice.wait(lambda d: any("lunch at noon?" in q.text for q in d.find_elements("css selector", "blockquote.quote")), message="reply quote")
        message = bob.driver.find_element("css selector", '[data-test="message"]')
        bob.driver.execute_script("arguments[0].focus()", message)
        message.find_element("css selector", '[aria-label="React 🎉"]').click()
        alice.wait(lambda d: any("🎉 1" in r.text for r in d.find_elements("css selector", ".reaction")), message="reaction")
        # Alice edits her message, then deletes it: both sides show the result.
        own = alice.driver.find_element("css selector", '[data-test="message"].outgoing')
        alice.driver.execute_script("arguments[0].focus()", own)
        own.find_element("css selector", '[aria-label="Edit"]').click()
        composer = alice.test("composer")
        composer.clear()
        composer.send_keys("lunch at one?\n")
        bob.wait_message("lunch at one?")
        self.assertNotIn("lunch at noon?", bob.messages())
        bob.wait_text("edited")
        own = alice.driver.find_element("css selector", '[data-test="message"].outgoing')
        alice.driver.execute_script("arguments[0].focus()", own)
        own.find_element("css selector", '[aria-label="Delete"]').click()
        bob.wait_text("This message was deleted.")
        self.assertNotIn("lunch at one?", bob.messages())
        # Bob cannot edit alice's messages: his page offers no such action on them.
        theirs = bob.driver.find_elements("css selector", '[data-test="message"].incoming [aria-label="Edit"]')
        self.assertEqual(theirs, [])

    def test_a_removed_member_loses_the_room(self) -> None:
        alice = self.browser()
        alice.register("alice")
        bob = self.browser()
        bob.register("bob")
        code = alice.create_room("Team")
        bob.join_room(code)
        alice.wait_text("bob joined")
        alice.send("welcome bob")
        bob.wait_message("welcome bob")
        alice.test("members-button").click()
        alice.el('[data-test="member-bob"] button:nth-of-type(1)')
        remove = next(b for b in alice.driver.find_elements("css selector", '[data-test="member-bob"] button') if b.text == "Remove")
        remove.click()
        alice.wait_text("bob removed")
        alice.el('[data-test="members-panel"] [data-test="dialog-cancel"]').click()
        bob.wait_text("You were removed from a room")
        alice.send("after bob left")
        # Bob's page drops the room; alice's next message is not shown to him.
        bob.wait(lambda d: "Team" not in bob.test("conversation-list").text, message="room gone for bob")
        self.assertNotIn("after bob left", bob.messages())

    def test_a_room_without_automatic_admission(self) -> None:
        alice = self.browser()
        alice.register("alice")
        bob = self.browser()
        bob.register("bob")
        alice.test("create-room").click()
        alice.test("room-name").send_keys("Board")
        alice.test("room-auto-admit").click()  # off: alice admits each member herself
        alice.dialog_confirm()
        code = alice.test("room-code").text.removeprefix("Code ").strip()
        bob.join_room(code)
        alice.wait_text("1 waiting to be admitted")
        # Before admission bob's device has no key from alice's: her message is unreadable there.
        alice.send("members only")
        bob.wait_text("could not be read")
        self.assertNotIn("members only", bob.messages())
        # Bob's own message reaches alice, marked as from a member nobody admitted.
        bob.send("let me in")
        alice.wait_message("let me in")
        self.assertTrue(alice.driver.find_elements("css selector", '[data-test="message"].incoming .badge.warning'), "unconfirmed mark")
        alice.test("members-button").click()
        alice.el('[data-test="member-bob"] [data-test="admit"]').click()
        alice.wait_text("bob admitted")
        alice.el('[data-test="members-panel"] [data-test="dialog-cancel"]').click()
        alice.send("welcome to the board")
        bob.wait_message("welcome to the board")

    def test_one_time_prekeys_are_topped_up_when_they_run_low(self) -> None:
        import json
        import urllib.request

        def call(method: str, path: str, body: dict | None = None, token: str | None = None):
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(self.server.url + path, method=method, data=data)
            if data is not None:
                request.add_header("Content-Type", "application/json")
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            with urllib.request.urlopen(request) as answer:
                return json.loads(answer.read() or b"null")

        bob = self.browser()
        bob.register("bob")
        call("POST", "/v1/accounts", {"username": "claimer", "password": "correct horse battery"})
        token = call("POST", "/v1/sessions", {"username": "claimer", "password": "correct horse battery"})["accessToken"]
        bob_id = call("GET", "/v1/users?username=bob", token=token)["userId"]
        # 91 claims leave 9 of bob's 100 one-time prekeys: the server tells his page, which uploads more.
        for _ in range(91):
            self.assertIn("oneTimePreKey", call("POST", f"/v1/users/{bob_id}/bundles", token=token)["devices"][0])

        def supply_restored(driver) -> bool:
            bob.test("profile").click()
            dialog = bob.test("profile-dialog")
            restored = "100 one-time keys" in dialog.text
            bob.el('[data-test="profile-dialog"] [data-test="dialog-cancel"]').click()
            return restored
        bob.wait(supply_restored, message="the page topped the server's one-time prekeys up to 100")
        # More claims than were left before the refill: each still gets a one-time prekey.
        for _ in range(20):
            self.assertIn("oneTimePreKey", call("POST", f"/v1/users/{bob_id}/bundles", token=token)["devices"][0])

    def test_every_control_has_an_accessible_name(self) -> None:
        alice = self.browser()
        alice.register("alice")
        alice.create_room("Checks")
        alice.send("a message with actions")
        problems = alice.driver.execute_script("""
            const problems = [];
            const name = (e) => (e.getAttribute('aria-label') || e.textContent || e.getAttribute('title') || '').trim();
            for (const b of document.querySelectorAll('button')) if (!name(b)) problems.push('button ' + b.outerHTML.slice(0, 80));
            for (const i of document.querySelectorAll('input:not([type=hidden]):not([type=file]), textarea, select')) {
              const labelled = i.getAttribute('aria-label') || (i.id && document.querySelector(`label[for="${i.id}"]`)) || i.closest('label');
              if (!labelled) problems.push('field ' + (i.id || i.name));
            }
            for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('img without alt');
            return problems;""")
        self.assertEqual(problems, [])
        # The composer sends with the keyboard alone.
        alice.test("composer").send_keys("sent with Enter\n")
        alice.wait_message("sent with Enter")

    def test_a_picture_reaches_contacts_and_rooms_encrypted(self) -> None:
        carol = self.cli("carol")
        carol.run("register", "carol")
        alice, bob = self.alice_and_bob_chatting("hello")
        code = alice.create_room("Pictures")
        carol.run("room", "join", code)
        alice.wait_text("carol joined")
        carol.run("send", f"#{code}", "hi all")
        alice.wait_message("hi all")
        # A picture, chosen in the profile dialog: uploaded encrypted, its key sent to bob and the room.
        folder = Path(tempfile.mkdtemp())
        picture = folder / "me.png"
        picture.write_bytes(bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000000301010018dd8db40000000049454e44ae426082"))
        alice.test("profile").click()
        alice.choose_file("profile-picture", picture)
        alice.wait_text("Picture updated.")
        alice.el('[data-test="profile-dialog"] [data-test="dialog-cancel"]').click()
        # Bob's page shows alice's picture, decrypted with the key from her profile message.
        bob.wait(lambda d: d.find_elements("css selector", '.conversation .avatar.picture img'), message="alice's picture at bob")
        loaded = bob.driver.execute_script("return [...document.querySelectorAll('.conversation .avatar.picture img')].every(i => i.complete && i.naturalWidth === 1)")
        self.assertTrue(loaded, "the decrypted picture is the 1x1 PNG")
        # The CLI in the room hears of it as a profile message, and reads the room as before.
        events = carol.listen(count=1)
        self.assertEqual([e.get("kind") for e in events], ["profile"])
        self.assertEqual(events[0]["from"], "alice")

    def test_page_security_headers_and_no_inline_code(self) -> None:
        import urllib.request
        with urllib.request.urlopen(self.server.url + "/") as answer:
            policy = answer.headers["Content-Security-Policy"]
            html = answer.read().decode()
            self.assertEqual(answer.headers["X-Content-Type-Options"], "nosniff")
            self.assertEqual(answer.headers["X-Frame-Options"], "DENY")
            self.assertEqual(answer.headers["Referrer-Policy"], "no-referrer")
        self.assertIn("script-src 'self'", policy)
        self.assertIn("style-src 'self'", policy)
        self.assertNotIn("unsafe-inline", policy)
        self.assertNotIn("<script>", html.replace('<script type="module" src="/js/ui/app.js"></script>', ""))
        self.assertNotIn("style=", html)
        # No file of the web client writes markup from strings.
        for path in (Path(__file__).resolve().parents[2] / "Web").rglob("*.js"):
            # Comments may name what the code avoids.
            source = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith(("//", "*", "/*")))
            for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
                self.assertNotIn(forbidden, source, f"{path.name} uses {forbidden}")


if __name__ == "__main__":
    unittest.main()
