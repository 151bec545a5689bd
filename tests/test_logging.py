"""No phone number in any log line: the HTTP client's request log would print the SMS
provider's lookup URL, which carries the number in its query string."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from paris_avenir.cli import configure_logging
from paris_avenir.messaging.channels.sms_brevo import BrevoSmsSender
from tests.servers import BrevoSmsApi

E164 = "+33639980042"


@pytest.fixture
def operator_logging() -> Iterator[None]:
    """The logging the console script sets up, undone afterwards."""
    names = ("httpx", "httpcore", "apscheduler")
    before = {name: logging.getLogger(name).level for name in names}
    configure_logging()
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def test_sending_and_looking_up_an_sms_logs_no_phone_number(
    sms_api: BrevoSmsApi, operator_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    sender = BrevoSmsSender(api_url=sms_api.url, api_key=BrevoSmsApi.API_KEY, sender="ParisAvenir")
    with caplog.at_level(logging.DEBUG):
        sender.send_sms(to=E164, text="Paris avenir : bonjour.", reference="journal:1", tag="test")
        sender.find_sent(to=E164, reference="journal:1")
    assert sms_api.calls, "the provider was really called"
    assert "639980042" not in caplog.text
