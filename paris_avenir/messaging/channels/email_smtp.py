"""Email over SMTP: smtp:// (plain, for a local relay), smtp+starttls:// or smtps:// (TLS)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from paris_avenir.messaging.channels import PermanentFailure, TemporaryFailure


class SmtpEmailSender:
    def __init__(self, url: str, *, sender: str, timeout: float = 10.0) -> None:
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

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.scheme == "smtp+starttls":
                client.starttls(context=context)
        if self.username and self.password:
            client.login(self.username, self.password)
        return client

    def send_email(
        self,
        *,
        to: str,
        subject: str,
        text: str,
        html: str | None,
        reference: str,
        attachment: tuple[str, str, str] | None = None,
    ) -> str | None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        # One Message-ID per outbox message, the same on every attempt: if a crash makes
        # us send it again, mail systems that deduplicate by Message-ID show it once.
        message_id = f"<{reference}@paris-avenir.local>"
        message["Message-ID"] = message_id
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        if attachment is not None:
            filename, content_type, body = attachment
            maintype, _, subtype = content_type.partition("/")
            message.add_attachment(
                body.encode(),
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=filename,
            )
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
