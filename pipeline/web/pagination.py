"""Numbered pages for the web app's long lists (the inbox, the match-review and consent-decision queues).

A person works a queue from its top, so the pages are numbered (``?page=2``) and every page keeps the list's
own order; a page number that is not a number, or past the end, shows the nearest page that exists rather
than an error. The links keep the list's filter (not a one-off banner's parameter), and the GOV.UK
pagination component draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request

PER_PAGE = 50

Item = TypeVar("Item")


def query_number(text: str, *, digits: int) -> int | None:
    """A query parameter's whole number of at most ``digits`` digits 0-9, or None (``²`` is a digit to Python, but
    not one ``int`` reads; a thousand digits is no page)."""
    return int(text) if text.isascii() and text.isdecimal() and len(text) <= digits else None


@dataclass(frozen=True)
class Pages:
    """Which page of ``total`` items is shown, ``per_page`` to a page."""

    number: int
    total: int
    per_page: int = PER_PAGE

    @classmethod
    def of(cls, request: Request, total: int, per_page: int | None = None) -> Pages:
        last = cls(1, total, per_page or PER_PAGE).count
        number = query_number(request.query_params.get("page", ""), digits=9) or 1
        return cls(min(max(1, number), last), total, per_page or PER_PAGE)

    @property
    def count(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def start(self) -> int:
        """The offset of the page's first item."""
        return (self.number - 1) * self.per_page

    def slice(self, items: Sequence[Item]) -> list[Item]:
        return list(items[self.start:self.start + self.per_page])

    @property
    def first_shown(self) -> int:
        return min(self.total, self.start + 1)

    @property
    def last_shown(self) -> int:
        return min(self.total, self.start + self.per_page)

    def component(self, request: Request, keep: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """The GOV.UK pagination component's parameters, or None when everything fits on one page. The links
        carry the query parameters named in ``keep`` (a filter), not one-off ones (a banner's)."""
        if self.count == 1:
            return None
        kept = [(k, v) for k, v in request.query_params.multi_items() if k in keep]

        def href(number: int) -> str:
            return f"{request.url.path}?{urlencode([*kept, ('page', str(number))])}"

        shown = sorted({1, self.count, *range(max(1, self.number - 1), min(self.count, self.number + 1) + 1)})
        items: list[dict[str, Any]] = []
        for previous, number in zip([0, *shown], shown, strict=False):
            if number - previous > 1:
                items.append({"ellipsis": True})
            items.append({"number": number, "href": href(number), "current": number == self.number})
        params: dict[str, Any] = {"items": items, "landmarkLabel": "Pages"}
        if self.number > 1:
            params["previous"] = {"href": href(self.number - 1)}
        if self.number < self.count:
            params["next"] = {"href": href(self.number + 1)}
        return params
