"""Counting what a journey costs a person: taps and page loads.

- A tap is one action of the person on one control: a click on a link or a button, ticking
  a box or a radio, typing into one field (however many characters), choosing one file.
  Every such action of the test goes through `Journey`, which counts it.
- A page load is one answer of the server that the person waits for and that shows them
  something new: a full navigation of the main frame (whatever redirects it went through,
  counted once, on its final answer) plus every htmx request (boosted links and forms, or
  a swap of part of a page), also counted on its final answer. Without JavaScript only the
  first kind exists; with JavaScript a boosted click is one htmx request instead of one
  navigation, so the two counts compare. Static files (CSS, JavaScript, icons) and the
  service worker are not page loads.
"""

from __future__ import annotations

from typing import Any


class Journey:
    def __init__(self, page: Any) -> None:
        self.page = page
        self.taps = 0
        self.loads = 0
        self.urls: list[str] = []
        page.on("response", self._on_response)

    def _on_response(self, response: Any) -> None:
        if 300 <= response.status < 400:
            return  # a redirect: its end is the load
        request = response.request
        navigation = request.is_navigation_request() and request.frame == self.page.main_frame
        first = request
        while first.redirected_from is not None:  # a redirect's follow-up may lose headers
            first = first.redirected_from
        htmx = first.headers.get("hx-request") == "true"
        if navigation or htmx:
            self.loads += 1
            self.urls.append(f"{first.method} {first.url} → {request.url}")

    def reset(self) -> None:
        self.taps = 0
        self.loads = 0
        self.urls = []

    def click(self, locator: Any) -> None:
        self.taps += 1
        locator.click()

    def check(self, locator: Any) -> None:
        self.taps += 1
        locator.check()

    def fill(self, locator: Any, value: str) -> None:
        self.taps += 1
        locator.fill(value)

    def choose_file(self, locator: Any, file: dict[str, Any]) -> None:
        self.taps += 1
        locator.set_input_files(file)
