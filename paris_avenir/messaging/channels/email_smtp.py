"""Email over SMTP: smtp:// (plain, for a local relay), smtp+starttls:// or smtps:// (TLS).

Every message is what mail systems expect of an automatic sender: a `Date`, a Message-ID
on our own domain, `Auto-Submitted: auto-generated` (RFC 3834: no vacation replies), and
only 7-bit data on the wire — non-ASCII text goes quoted-printable or base64 — so it
arrives intact through a server that does not offer 8BITMIME. Outreach emails carry the
one-click unsubscribe headers of RFC 8058.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import unquote, urlsplit

from paris_avenir.db import utcnow
from paris_avenir.messaging.channels import OutgoingEmail, PermanentFailure, TemporaryFailure

# The SMTP policy (CRLF line ends, headers folded at 78) limited to 7-bit data: set_content
# then picks quoted-printable or base64 for anything that is not ASCII.
SEVEN_BIT_SMTP = policy.SMTP.clone(cte_type="7bit")
_METHOD_LINE = re.compile(r"^METHOD:([A-Za-z-]+)\s*$", re.MULTILINE)


def calendar_params(body: str) -> dict[str, str]:
    """The `method` parameter of a text/calendar part: the METHOD of the .ics itself
    (REQUEST, CANCEL…), which calendar clients read to add, update or remove the event."""
    found = _METHOD_LINE.search(body)
    return {"method": found.group(1).upper()} if found else {}


class SmtpEmailSender:
    def __init__(
        self,
        url: str,
        *,
        sender: str,
        timeout: float = 10.0,
        domain: str = "paris-avenir.local",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtp+starttls", "smtps"}:
            raise ValueError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (
            465 if parts.scheme == "smtps" else 587 if parts.scheme == "smtp+starttls" else 25
        )
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout
        self.domain = domain  # of the Message-ID: the BASE_URL's host
        # Built once, for TLS only: loading the system's CA bundle costs ~50 ms of CPU (with
        # the GIL held), which per message capped sending at ~18 emails/s whatever the
        # dispatcher's concurrency (bench/sending.py). An SSLContext is safe to share.
        self._tls: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _connect(self) -> smtplib.SMTP:
        if self.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._tls_context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.scheme == "smtp+starttls":
                client.starttls(context=self._tls_context())
        if self.username and self.password:
            client.login(self.username, self.password)
        return client

    def send_email(self, email: OutgoingEmail, *, now: datetime | None = None) -> str | None:
        message = build_message(
            sender=self.sender,
            to=email.to,
            subject=email.subject,
            text=email.text,
            html=email.html,
            message_id=f"<{email.reference}@{self.domain}>",
            date=now or utcnow(),
            attachment=email.attachment,
            unsubscribe_url=email.unsubscribe_url,
        )
        message_id = str(message["Message-ID"])
        try:
            with self._connect() as client:
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentFailure("mail server refused the address") from None
            raise TemporaryFailure("mail server deferred the address") from None
        except smtplib.SMTPResponseException as error:
            if error.smtp_code >= 500 and error.smtp_code not in {530, 535}:
                raise PermanentFailure(
                    f"mail server refused the message ({error.smtp_code})"
                ) from None
            raise TemporaryFailure(f"mail server answered {error.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as error:
            raise TemporaryFailure(f"mail server unreachable ({type(error).__name__})") from None
        return message_id


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    date: datetime,
    attachment: tuple[str, str, str] | None = None,
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    """The MIME message: text, its HTML alternative, then the attachment (an .ics)."""
    message = EmailMessage(policy=SEVEN_BIT_SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)  # aware: "+0000", never "-0000"
    # One Message-ID per outbox message, the same on every attempt: if a crash makes us
    # send it again, mail systems that deduplicate by Message-ID show it once.
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text, charset="utf-8")
    if html:
        message.add_alternative(html, subtype="html", charset="utf-8")
    if attachment is not None:
        filename, content_type, body = attachment
        maintype, _, subtype = content_type.partition("/")
        if maintype == "text":
            subtype = subtype.split(";")[0].strip() or "plain"
            params = calendar_params(body) if subtype == "calendar" else {}
            message.add_attachment(
                body, subtype=subtype, charset="utf-8", filename=filename, params=params
            )
        else:
            message.add_attachment(
                body.encode(),
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=filename,
            )
    return message
