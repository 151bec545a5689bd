"""The Primotexto adapter against its published API (tests/primotexto/): our requests
validate against the stored definition, its example answers read as they should, each
documented error code means what it says (a bad number flags the youth, a credit or key
problem alerts the operator, a 5xx is retried), a timeout is "outcome unknown" (looked up
before anything else), and the lookup by category finds what left and only that."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from paris_avenir.messaging.channels import (
    MessageRefused,
    OutcomeUnknown,
    PermanentFailure,
    ProviderRefusedRequest,
    TemporaryFailure,
)
from paris_avenir.messaging.channels.sms_primotexto import (
    PrimotextoSmsSender,
    accepts,
    category_of,
)
from paris_avenir.messaging.sms_segments import fit_gsm7
from tests.servers import (
    PrimotextoSmsApi,
    free_port,
    primotexto_definition,
    primotexto_example,
    primotexto_schema,
    running,
)

E164 = "+33639980042"


@pytest.fixture
def primotexto() -> Iterator[PrimotextoSmsApi]:
    yield from running(PrimotextoSmsApi())


def _sender(api: PrimotextoSmsApi, **options: object) -> PrimotextoSmsSender:
    return PrimotextoSmsSender(
        api_url=api.url,
        api_key=str(options.get("api_key", PrimotextoSmsApi.API_KEY)),
        sender=str(options.get("sender", "ParisAvenir")),
        timeout=float(options.get("timeout", 5.0)),  # type: ignore[arg-type]
    )


def _captured(handler_calls: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        handler_calls.append(request)
        return httpx.Response(200, json=primotexto_example("/notification/messages/send", "post"))

    return httpx.MockTransport(handler)


def test_our_request_is_the_documented_one() -> None:
    calls: list[httpx.Request] = []
    sender = PrimotextoSmsSender(
        api_url="https://api.primotexto.com/v2",
        api_key="key-1",
        sender="ParisAvenir",
        transport=_captured(calls),
    )
    text = fit_gsm7("Votre rendez-vous est confirmé : mercredi à 10h, 5 rue Leblanc.")
    provider_id = sender.send_sms(to=E164, text=text, reference="rdv:42:confirm", tag="rdv")

    (request,) = calls
    assert request.method == "POST"
    assert str(request.url) == "https://api.primotexto.com/v2/notification/messages/send"
    assert request.headers["X-Primotexto-ApiKey"] == "key-1"
    assert request.headers["Content-Type"] == "application/json"
    payload = json.loads(request.content)
    jsonschema.Draft202012Validator(primotexto_schema("notificationMessage")).validate(payload)
    assert payload == {
        "number": E164,
        "message": text,
        "sender": "ParisAvenir",
        "campaignName": "rdv",
        "category": category_of("rdv:42:confirm"),
    }
    # The documented answer's snapshotId, marked as Primotexto's.
    assert provider_id == "primotexto:386479"


def test_the_definition_s_own_examples_validate() -> None:
    definition = primotexto_definition()
    send = definition["paths"]["/notification/messages/send"]["post"]
    example = send["requestBody"]["content"]["application/json"]["example"]
    jsonschema.Draft202012Validator(primotexto_schema("notificationMessage")).validate(example)
    jsonschema.Draft202012Validator(primotexto_schema("stats")).validate(
        primotexto_example("/messages/stats", "get")
    )


def test_a_category_is_one_message_s_and_only_letters_and_digits() -> None:
    first, second = category_of("code:1"), category_of("code:2")
    assert first != second
    assert first.isalnum() and len(first) <= 40
    assert category_of("code:1") == first  # the same message asks the same category


def test_texts_outside_its_characters_are_not_for_primotexto() -> None:
    assert accepts(fit_gsm7("Bonjour Amina, votre code est 123456. À bientôt !")) is True
    assert accepts("موعدك غدا الساعة 10") is False  # Arabic
    assert accepts("ቆጸራኹም ጽባሕ") is False  # Tigrinya


def test_it_sends_through_the_fake_server_and_finds_it_again(
    primotexto: PrimotextoSmsApi,
) -> None:
    sender = _sender(primotexto)
    assert sender.find_sent(to=E164, reference="code:7") is None  # never got it
    provider_id = sender.send_sms(to=E164, text="Code 123456", reference="code:7", tag="code")
    assert provider_id == f"primotexto:{primotexto.sent[0]['snapshotId']}"
    found = sender.find_sent(to=E164, reference="code:7")
    assert found == "primotexto:" + category_of("code:7")
    # Another message to the same number is not this one.
    assert sender.find_sent(to=E164, reference="code:8") is None


@pytest.mark.parametrize(
    ("code", "kind", "flags"),
    [
        (11, PermanentFailure, True),  # invalid number
        (19, PermanentFailure, True),  # fixed line
        (12, MessageRefused, False),  # unsubscribed at Primotexto (STOP)
        (32, MessageRefused, False),  # message too long
        (71, ProviderRefusedRequest, False),  # no credits
        (72, ProviderRefusedRequest, False),  # authentication
        (22, ProviderRefusedRequest, False),  # sender too long
    ],
)
def test_each_documented_error_code_means_what_it_says(
    primotexto: PrimotextoSmsApi, code: int, kind: type[Exception], flags: bool
) -> None:
    primotexto.next_statuses = [400]
    primotexto.next_codes = [code]
    with pytest.raises(kind) as raised:
        _sender(primotexto).send_sms(to=E164, text="Bonjour", reference="r", tag="t")
    assert raised.value.flags_recipient is flags  # type: ignore[attr-defined]
    assert E164 not in str(raised.value) and E164.lstrip("+") not in str(raised.value)
    assert primotexto.sent == []


def test_a_wrong_key_is_the_operator_s_problem(primotexto: PrimotextoSmsApi) -> None:
    with pytest.raises(ProviderRefusedRequest, match="72"):
        _sender(primotexto, api_key="wrong").send_sms(
            to=E164, text="Bonjour", reference="r", tag="t"
        )


def test_an_invalid_request_is_refused_by_the_fake_as_documented(
    primotexto: PrimotextoSmsApi,
) -> None:
    # A sender of 12 characters breaks the documented 3–11: code 20, ours to fix.
    with pytest.raises(ProviderRefusedRequest, match="code 20"):
        _sender(primotexto, sender="ParisAvenir12").send_sms(
            to=E164, text="Bonjour", reference="r", tag="t"
        )
    with pytest.raises(PermanentFailure, match="11"):
        _sender(primotexto).send_sms(to="+33 6 12", text="Bonjour", reference="r", tag="t")


def test_a_server_error_is_retried_and_proves_it_was_not_taken(
    primotexto: PrimotextoSmsApi,
) -> None:
    primotexto.next_statuses = [503]
    with pytest.raises(TemporaryFailure) as raised:
        _sender(primotexto).send_sms(to=E164, text="Bonjour", reference="r", tag="t")
    assert not isinstance(raised.value, OutcomeUnknown)
    assert primotexto.sent == []


def test_no_answer_in_time_is_outcome_unknown(primotexto: PrimotextoSmsApi) -> None:
    primotexto.response_delay = 0.6  # the SMS leaves, the answer does not come in time
    with pytest.raises(OutcomeUnknown):
        _sender(primotexto, timeout=0.3).send_sms(
            to=E164, text="Bonjour", reference="late:1", tag="t"
        )
    assert len(primotexto.sent) == 1
    # The lookup then says it left: it is never sent again.
    primotexto.response_delay = 0
    assert _sender(primotexto).find_sent(to=E164, reference="late:1") is not None


def test_no_connection_is_a_plain_retry() -> None:
    sender = PrimotextoSmsSender(
        api_url=f"http://127.0.0.1:{free_port()}/v2", api_key="k", sender="ParisAvenir"
    )
    with pytest.raises(TemporaryFailure) as raised:
        sender.send_sms(to=E164, text="Bonjour", reference="r", tag="t")
    assert not isinstance(raised.value, OutcomeUnknown)


def test_a_lookup_that_cannot_tell_keeps_the_message_waiting(
    primotexto: PrimotextoSmsApi,
) -> None:
    primotexto.lookup_status = 500
    with pytest.raises(TemporaryFailure):
        _sender(primotexto).find_sent(to=E164, reference="r")


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        ({"sent": 0, "submitted": 0, "delivered": 0, "errors": 0, "bounced": 0}, None),
        ({"sent": 1, "submitted": 1, "delivered": 0, "errors": 0, "bounced": 0}, "found"),
        ({"sent": 1, "submitted": 1, "delivered": 0, "errors": 1, "bounced": 0}, "found"),
        ({"sent": 1, "submitted": 1, "delivered": 0, "errors": 0, "bounced": 1}, "bounced"),
    ],
)
def test_the_statistics_of_a_category_read_as_documented(
    stats: dict[str, int], expected: str | None
) -> None:
    example = primotexto_example("/messages/stats", "get")
    body = dict.fromkeys(example, 0) | stats
    jsonschema.Draft202012Validator(primotexto_schema("stats")).validate(body)
    sender = PrimotextoSmsSender(
        api_url="https://api.primotexto.com/v2",
        api_key="k",
        sender="ParisAvenir",
        transport=httpx.MockTransport(lambda _request: httpx.Response(200, json=body)),
    )
    if expected == "bounced":
        with pytest.raises(PermanentFailure):
            sender.find_sent(to=E164, reference="r")
    elif expected is None:
        assert sender.find_sent(to=E164, reference="r") is None
    else:
        assert sender.find_sent(to=E164, reference="r") == "primotexto:" + category_of("r")


def test_no_message_for_this_query_means_never_got_it() -> None:
    sender = PrimotextoSmsSender(
        api_url="https://api.primotexto.com/v2",
        api_key="k",
        sender="ParisAvenir",
        transport=httpx.MockTransport(lambda _request: httpx.Response(404, json={"code": 16})),
    )
    assert sender.find_sent(to=E164, reference="r") is None
