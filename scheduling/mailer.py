"""Mailer: email through the program's SMTP server, with the SMTP reply mapped to sent / retry / failed."""
from __future__ import annotations

import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from bot.config import ConfigError
from storage.outbound import SendResult

log = logging.getLogger(__name__)

PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
# `addr` or `Name <addr>`; anything else (line breaks, a second address) is refused, not repaired.
ADDRESS = re.compile(r"\s*(?:[^<>]*<([^<>\s]+)>|([^<>\s]+))\s*")


def email_message(recipients: list[str], subject: str, body: str) -> dict:
    """The one entry of an email's OutboundMessage.messages: what Delivery hands to `Mailer.send`."""
    return {"type": "email", "to": list(recipients), "subject": subject, "body": body}


def recipients_of(addresses: str | None) -> list[str]:
    """A configured address, or several separated by commas."""
    return [a.strip() for a in (addresses or "").split(",") if a.strip()]


class Mailer:
    """Opens one SMTP session per email: sends are rare, and a fresh session has no stale state to recover from."""

    def __init__(self, url: str, sender: str, timeout: float = 10):
        parts = urlsplit(url)
        if parts.scheme not in PORTS or not parts.hostname:
            raise ConfigError("DXDESK_SMTP_URL は smtp://、smtp+starttls://、smtps:// のいずれかでホスト名を含めて指定してください。")
        self.security, self.host = parts.scheme, parts.hostname
        try:
            self.port = parts.port or PORTS[parts.scheme]
        except ValueError:
            raise ConfigError("DXDESK_SMTP_URL のポート番号が正しくありません。") from None
        self.username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password or "")
        self.envelope_from = _address(sender or "")
        if self.envelope_from is None:
            raise ConfigError("DXDESK_MAIL_FROM に送信元のメールアドレスを指定してください（例: 窓口名 <dx-desk@example.jp>）。")
        self.sender, self.timeout = sender, timeout
        self._domain = self.envelope_from.rpartition("@")[2]

    def send(self, recipients: list[str], subject: str, body: str, *, key: str | None = None) -> SendResult:
        """Several recipients are always blind: they are only in the envelope, never in a header.

        `key` (the message's retry key) makes the Message-ID, so a retry after a lost reply is recognisably the same mail.
        """
        addresses = [_address(r) for r in recipients]
        if not addresses or None in addresses:
            log.warning("mail %s not sent: a recipient address is malformed", key)
            return SendResult("failed", error="invalid_address")
        message = self._message(addresses, subject, body, key)
        try:
            refused = self._deliver(message, addresses)
        except smtplib.SMTPRecipientsRefused as exc:
            return self._refused(key, [code for code, _ in exc.recipients.values()])
        except smtplib.SMTPResponseException as exc:
            return self._refused(key, [exc.smtp_code])
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib turns a read timeout into a disconnection; the timeout is still what happened.
            error = "timeout" if isinstance(exc.__context__, TimeoutError) else "network"
            log.warning("mail %s not sent (%s)", key, error)
            return SendResult("retry", error=error)
        except smtplib.SMTPException:  # no STARTTLS or no usable AUTH: a configuration problem
            log.warning("mail %s not sent: the SMTP server does not offer what DXDESK_SMTP_URL asks for", key)
            return SendResult("failed", error="smtp_unsupported")
        except OSError as exc:  # smtplib's own errors are OSErrors too, hence last
            error = "timeout" if isinstance(exc, TimeoutError) else "tls" if isinstance(exc, ssl.SSLError) else "network"
            log.warning("mail %s not sent (%s)", key, error)
            return SendResult("retry", error=error)
        if refused:
            # The others have it, so a retry would send them a second copy; the refusal stays on the row.
            codes = sorted({code for code, _ in refused.values()})
            log.warning("mail %s sent, but %d of %d recipients refused (%s)", key, len(refused), len(addresses), codes)
            return SendResult("sent", error=f"smtp_{codes[-1]}_partly_refused")
        log.info("mail %s accepted by the SMTP server for %d recipient(s)", key, len(addresses))
        return SendResult("sent")

    def _message(self, addresses: list[str], subject: str, body: str, key: str | None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = addresses[0] if len(addresses) == 1 else self.envelope_from
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = f"<{key}@{self._domain}>" if key else make_msgid(domain=self._domain)
        # base64 reaches every server; 8bit would need the server's 8BITMIME.
        message.set_content(body, charset="utf-8", cte="base64")
        return message

    def _deliver(self, message: EmailMessage, addresses: list[str]) -> dict:
        """The recipients the server refused while taking the mail for the others."""
        # The sender's domain names us in EHLO; smtplib's default would look up our FQDN in DNS on every send.
        if self.security == "smtps":
            smtp = smtplib.SMTP_SSL(self.host, self.port, local_hostname=self._domain, timeout=self.timeout,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=self._domain, timeout=self.timeout)
        try:
            if self.security == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self._password)
            return smtp.send_message(message, self.envelope_from, addresses)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()  # the mail's fate was settled before QUIT

    def _refused(self, key: str | None, codes: list[int]) -> SendResult:
        """4xx: the server may take it later. 5xx: it never will, as it is."""
        temporary = [c for c in codes if 400 <= c < 500]
        code = temporary[0] if temporary else max(codes)
        log.warning("mail %s not sent: SMTP %s", key, code)
        return SendResult("retry" if temporary else "failed", error=f"smtp_{code}")


def _address(text: str) -> str | None:
    """The plain ASCII addr-spec in `text`, or None: without SMTPUTF8 nothing else can go in an envelope."""
    found = ADDRESS.fullmatch(text) if text.isprintable() else None
    candidate = found and (found.group(1) or found.group(2))
    if not candidate or not candidate.isascii() or any(c in candidate for c in ",;"):
        return None
    local, at, domain = candidate.rpartition("@")
    return candidate if local and domain else None
