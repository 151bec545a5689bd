"""panva's oidc-provider (an OpenID Certified implementation, from npm) on loopback: the
provider that staff single sign-on and FranceConnect are tested against. Our own stub in
tests/servers.py stays for fault injection (a tampered nonce, a foreign key).

The provider listens on 127.0.0.2, the platform on 127.0.0.1: two hosts, so the browser
keeps their cookies apart as it would for two real sites.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from tests.helpers import npm_installed
from tests.servers import free_port

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"
PROVIDER_HOST = "127.0.0.2"
PROVIDER_LOGIN_PASSWORD = "any password"  # the development sign-in page takes any


@dataclass
class ProviderClient:
    """One client as registered at the provider (RFC 7591 metadata)."""

    client_id: str
    client_secret: str
    redirect_uri: str
    post_logout_redirect_uri: str
    token_endpoint_auth_method: str = "client_secret_basic"
    userinfo_signed_response_alg: str | None = None  # "RS256": userinfo as a signed JWT
    jwks: dict[str, Any] | None = None  # private_key_jwt: the client's public keys

    def metadata(self) -> dict[str, Any]:
        registered: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": [self.redirect_uri],
            "post_logout_redirect_uris": [self.post_logout_redirect_uri],
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        }
        if self.jwks is not None:
            registered["jwks"] = self.jwks
            registered.pop("client_secret")
        if self.userinfo_signed_response_alg:
            registered["userinfo_signed_response_alg"] = self.userinfo_signed_response_alg
        return registered


FRANCECONNECT_SCOPES = {
    "given_name": ["given_name"],
    "family_name": ["family_name"],
    "birthdate": ["birthdate"],
    "email": ["email", "email_verified"],
}
PROCONNECT_SCOPES = {
    "email": ["email", "email_verified"],
    "given_name": ["given_name"],
    "usual_name": ["usual_name"],
}


@dataclass
class PanvaProvider:
    """One oidc-provider process. `requests` lists what it answered, as
    (method, path, status, authorization scheme)."""

    clients: list[ProviderClient]
    accounts: dict[str, dict[str, Any]]
    scopes: dict[str, list[str]] = field(default_factory=lambda: dict(PROCONNECT_SCOPES))
    client_auth_methods: list[str] = field(
        default_factory=lambda: ["client_secret_basic", "client_secret_post"]
    )
    claims_in_id_token: bool = False
    acr_values: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    requests: list[tuple[str, str, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="oidc-provider-")

    @property
    def issuer(self) -> str:
        return f"http://{PROVIDER_HOST}:{self.port}"

    def start(self) -> PanvaProvider:
        npm_installed(PROVIDER_DIR, "oidc-provider")
        config = Path(self._folder.name) / "config.json"
        config.write_text(
            json.dumps(
                {
                    "host": PROVIDER_HOST,
                    "port": self.port,
                    "issuer": self.issuer,
                    "clients": [client.metadata() for client in self.clients],
                    "clientAuthMethods": self.client_auth_methods,
                    "claimsInIdToken": self.claims_in_id_token,
                    "acrValues": self.acr_values,
                    "scopes": self.scopes,
                    "accounts": self.accounts,
                }
            )
        )
        self._process = subprocess.Popen(
            ["node", str(PROVIDER_DIR / "provider.mjs"), str(config)],
            cwd=PROVIDER_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(ready,), daemon=True).start()
        if not ready.wait(20):
            self.stop()
            raise RuntimeError("oidc-provider did not start")
        # Listening is not answering yet: wait for its discovery document.
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return self

    def _read_output(self, ready: threading.Event) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            words = line.split()
            if words[:1] == ["listening"]:
                ready.set()
            elif words[:1] == ["request"] and len(words) == 5:
                self.requests.append((words[1], words[2], int(words[3]), words[4]))

    def token_requests(self) -> list[tuple[str, str, int, str]]:
        return [request for request in self.requests if request[1] == "/token"]

    def stop(self) -> None:
        """Killed, as a provider that goes down: its port refuses connections."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def close(self) -> None:
        self.stop()
        self._folder.cleanup()

    def __enter__(self) -> PanvaProvider:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _Forms(HTMLParser):
    """The forms of a provider's page: action, method and fields (with their values)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._buttons: list[tuple[str | None, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "id": named.get("id"),
                    "action": named.get("action", ""),
                    "method": named.get("method", "get").lower(),
                    "fields": {},
                    "buttons": [],
                }
            )
        elif tag == "input" and "name" in named:
            form = self._form_for(named.get("form"))
            if form is not None:
                form["fields"][named["name"]] = named.get("value", "")
        elif tag == "button":
            form = self._form_for(named.get("form"))
            if form is not None:
                form["buttons"].append(named)

    def _form_for(self, form_id: str | None) -> dict[str, Any] | None:
        if form_id:
            return next((form for form in self.forms if form["id"] == form_id), None)
        return self.forms[-1] if self.forms else None


@dataclass
class ProviderBrowser:
    """The part of a browser that talks to the provider: its cookies (the provider's own
    session), its pages and forms. Stops at the first redirect to the platform."""

    platform_url: str
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    pages: list[str] = field(default_factory=list)  # the provider's pages it was shown

    def visit(self, url: str, *, login: str | None = None, sign_out: bool = True) -> str:
        """Follows the provider from `url` until it sends the browser elsewhere; signs in
        as `login` if the provider asks, confirms its sign-out if asked. The URL it leaves
        for."""
        response = self.client.get(url)
        for _ in range(12):
            if response.is_redirect:
                location = str(response.next_request.url if response.next_request else "")
                if location.startswith(self.platform_url):
                    return location
                response = self.client.get(location)
                continue
            assert response.status_code == 200, response.text
            self.pages.append(response.text)
            parser = _Forms()
            parser.feed(response.text)
            form = parser.forms[0]
            fields = dict(form["fields"])
            if "login" in fields:
                assert login is not None, "the provider asks who signs in"
                fields |= {"login": login, "password": PROVIDER_LOGIN_PASSWORD}
            elif form["buttons"] and sign_out:
                fields["logout"] = "yes"  # "Yes, sign me out"
            action = urljoin(str(response.url), form["action"])
            response = self.client.post(action, data=fields)
        raise AssertionError("the provider kept the browser")

    def asked_to_sign_in(self) -> bool:
        return bool(self.pages) and 'name="login"' in self.pages[-1]

    def close(self) -> None:
        self.client.close()
