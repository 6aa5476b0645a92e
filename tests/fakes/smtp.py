"""FakeSmtpServer: a real SMTP server on 127.0.0.1 (RFC 5321's core, optional AUTH) that records what it accepts."""

from __future__ import annotations

import base64
import binascii
import re
import socketserver
import sys
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

HOSTNAME = "fake-smtp.invalid"
MAX_LINE = 64 * 1024
PATH = re.compile(r"(?i)(?:FROM|TO):\s*<([^>]*)>")


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    """The message as sent, CRLF line ends, dot-stuffing undone."""
    user: str | None
    """Who signed in with AUTH, if anyone."""

    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)


class FakeSmtpServer:
    """`with FakeSmtpServer() as smtp:` listens at `smtp.url` until the block ends.

    With `users` ({login: password}) it offers AUTH with the `auth` mechanisms and requires it before MAIL.
    """

    def __init__(self, users: dict[str, str] | None = None, auth: tuple[str, ...] = ("PLAIN", "LOGIN")) -> None:
        self.users, self.auth = dict(users or {}), auth
        self._lock = threading.Lock()
        self._mails: list[ReceivedMail] = []
        self._scripts: dict[str, list[int]] = {}
        self._port = 0
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self._port}"

    def __enter__(self) -> FakeSmtpServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen again on the same port, after `stop`."""
        self._server = _Server(("127.0.0.1", self._port), _handler_for(self))
        self._port = self._server.server_address[1]
        # A short poll keeps shutdown, and so each test's teardown, quick.
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        """Close the listening socket: connections are refused until `start`."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def script(self, command: str, codes: list[int]) -> None:
        """The next replies to `command` (RCPT, MAIL, or DATA for the reply after the message) get these codes.

        A 2xx entry means the usual answer; any other refuses that recipient, sender or message.
        """
        with self._lock:
            self._scripts.setdefault(command.upper(), []).extend(codes)

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._mails)

    def _scripted(self, command: str) -> int | None:
        with self._lock:
            queue = self._scripts.get(command)
            code = queue.pop(0) if queue else None
        return None if code is None or 200 <= code < 300 else code

    def _accept(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._mails.append(mail)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up mid-session (a TLS client meeting plain SMTP, say) is part of some tests.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Session:
    """One connection's state: the greeting, who signed in, and the transaction under way."""

    def __init__(self) -> None:
        self.greeted, self.user = False, None
        self.reset()

    def reset(self) -> None:
        self.mail_from: str | None = None
        self.rcpt_tos: list[str] = []


def _handler_for(fake: FakeSmtpServer) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        timeout = 10

        def handle(self) -> None:
            session = _Session()
            self.reply(f"220 {HOSTNAME} ESMTP ready")
            while (line := self.read_line()) is not None:
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                if verb == "QUIT":
                    self.reply("221 2.0.0 Bye")
                    return
                handler = getattr(self, f"do_{verb.lower()}", None) if verb.isalpha() else None
                if handler is None:
                    self.reply("502 5.5.1 Command not implemented")
                else:
                    handler(session, arg.strip())

        def do_ehlo(self, session: _Session, arg: str) -> None:
            session.greeted = True
            session.reset()
            features = [HOSTNAME, "8BITMIME", "SIZE 10485760"] + ([f"AUTH {' '.join(fake.auth)}"] if fake.users else [])
            self.reply(*(f"250-{f}" for f in features[:-1]), f"250 {features[-1]}")

        def do_helo(self, session: _Session, arg: str) -> None:
            session.greeted = True
            session.reset()
            self.reply(f"250 {HOSTNAME}")

        def do_auth(self, session: _Session, arg: str) -> None:
            if not fake.users or session.user:
                self.reply("503 5.5.1 AUTH not available")
                return
            mechanism, _, initial = arg.partition(" ")
            if mechanism.upper() not in fake.auth:
                self.reply("504 5.5.4 Unrecognized authentication type")
                return
            if mechanism.upper() == "PLAIN":  # authzid NUL login NUL password
                fields = (self.decode(initial or self.challenge("")) or "").split("\0")
                login, password = fields[1:] if len(fields) == 3 else (None, None)
            else:
                login = self.decode(initial or self.challenge("Username:"))
                password = self.decode(self.challenge("Password:"))
            if login and fake.users.get(login) == password:
                session.user = login
                self.reply("235 2.7.0 Authentication successful")
            else:
                self.reply("535 5.7.8 Authentication credentials invalid")

        def do_mail(self, session: _Session, arg: str) -> None:
            address = PATH.match(arg)
            if not session.greeted or session.mail_from is not None:
                self.reply("503 5.5.1 Bad sequence of commands")
            elif fake.users and not session.user:
                self.reply("530 5.7.0 Authentication required")
            elif address is None:
                self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            elif code := fake._scripted("MAIL"):
                self.reply(f"{code} Sender refused")
            else:
                session.mail_from = address.group(1)
                self.reply("250 2.1.0 Ok")

        def do_rcpt(self, session: _Session, arg: str) -> None:
            address = PATH.match(arg)
            if session.mail_from is None:
                self.reply("503 5.5.1 Need MAIL before RCPT")
            elif address is None or "@" not in address.group(1):
                self.reply("501 5.1.3 Bad recipient address syntax")
            elif code := fake._scripted("RCPT"):
                self.reply(f"{code} Recipient refused")
            else:
                session.rcpt_tos.append(address.group(1))
                self.reply("250 2.1.5 Ok")

        def do_data(self, session: _Session, arg: str) -> None:
            if not session.rcpt_tos:
                self.reply("503 5.5.1 Need RCPT before DATA")
                return
            self.reply("354 End data with <CR><LF>.<CR><LF>")
            lines = []
            while (raw := self.rfile.readline(MAX_LINE)) not in (b"", b".\r\n"):
                lines.append(raw[1:] if raw.startswith(b".") else raw)
            if raw == b"":
                return  # the client went away mid-message: nothing was accepted
            if code := fake._scripted("DATA"):
                self.reply(f"{code} Message refused")
            else:
                fake._accept(ReceivedMail(session.mail_from, list(session.rcpt_tos), b"".join(lines), session.user))
                self.reply("250 2.0.0 Ok: queued")
            session.reset()

        def do_rset(self, session: _Session, arg: str) -> None:
            session.reset()
            self.reply("250 2.0.0 Ok")

        def do_noop(self, session: _Session, arg: str) -> None:
            self.reply("250 2.0.0 Ok")

        def challenge(self, prompt: str) -> str:
            self.reply(f"334 {base64.b64encode(prompt.encode()).decode()}")
            return self.read_line() or ""

        def decode(self, text: str) -> str | None:
            try:
                return base64.b64decode(text, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None

        def read_line(self) -> str | None:
            raw = self.rfile.readline(MAX_LINE)
            return raw.decode("utf-8", "replace").rstrip("\r\n") if raw else None

        def reply(self, *lines: str) -> None:
            self.wfile.write("".join(f"{line}\r\n" for line in lines).encode())

    return Handler
