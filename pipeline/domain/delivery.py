"""Delivery rules, pure: which channels a recipient gets, in what order, and when a failed attempt is retried.

A notification gets one delivery row per channel (``email``, ``sms``, ``webhook``) for which its recipient has
an address. The council's configuration (``delivery.routes`` in config/defaults.yaml) says, per recipient role
and urgency, which channels are sent at once (``send``) and which wait as fallbacks (``fallback``), tried in
order when every channel sent so far has failed. ``resolve`` turns that into each row's starting state,
deterministically, so any worker can resolve any row on its own.

An attempt ends in one of four outcomes: accepted by the provider; a transient failure (connection refused,
5xx, rate limited), retried with exponential backoff and jitter up to ``max_attempts``; a permanent failure the
provider reported (4xx, SMTP 5xx), never re-sent on that channel; or an ambiguous one (a timeout after the
request was sent, or a crash mid-send), re-sent at most once and marked as a possible duplicate.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pipeline.domain.calendar import Duration, parse_timescale
from pipeline.domain.model import NotificationStatus

CHANNELS = ("email", "sms", "webhook")


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    AMBIGUOUS = "ambiguous"


class DeliveryState(StrEnum):
    NEW = "new"            # written with the notification; resolved against the routes by the relay
    PENDING = "pending"    # due to be sent at next_attempt_at
    STANDBY = "standby"    # a fallback channel, sent only if every channel before it fails
    SENDING = "sending"    # claimed by a relay; next_attempt_at is the lease's end
    SENT = "sent"          # accepted by the provider for a real contact: the notification counts as delivered
    DELIVERED = "delivered"  # the provider's callback confirmed it reached the handset or mailbox
    FAILED = "failed"      # given up on this channel
    SKIPPED = "skipped"    # not in this recipient's route, no provider for it, or acknowledged before it was sent


# Rows a relay claims when they are due (a ``sending`` one is due when its lease runs out): a channel still working.
ACTIVE = frozenset({DeliveryState.NEW, DeliveryState.PENDING, DeliveryState.SENDING})
REACHED = frozenset({DeliveryState.SENT, DeliveryState.DELIVERED})
# A notification in one of these becomes ``delivered`` when a send of it is accepted; a viewed, acknowledged or
# withheld one keeps its status (and a delivered one when it was delivered).
NOT_YET_DELIVERED = frozenset({NotificationStatus.PENDING, NotificationStatus.FAILED})


def _seconds(value: Any, name: str) -> float:
    try:
        parsed = parse_timescale(value)
    except ValueError as error:
        raise ValueError(f"delivery.retry.{name}: {error}") from None
    if not isinstance(parsed, Duration):
        raise ValueError(f"delivery.retry.{name} takes a plain ISO-8601 duration")
    return parsed.delta.total_seconds()


@dataclass(frozen=True)
class Retry:
    initial_seconds: float = 2.0
    multiplier: float = 2.0
    max_delay_seconds: float = 300.0
    jitter: float = 0.2
    max_attempts: int = 6
    lease_seconds: float = 120.0  # how long a claimed row may stay `sending` before it counts as a crash mid-send

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Retry:
        def number(name: str, default: float) -> float:
            value = raw.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"delivery.retry.{name}: a number, not {value!r}")
            return float(value)

        return cls(
            initial_seconds=_seconds(raw.get("initial", "PT2S"), "initial"),
            multiplier=number("multiplier", 2.0),
            max_delay_seconds=_seconds(raw.get("max_delay", "PT5M"), "max_delay"),
            jitter=number("jitter", 0.2),
            max_attempts=int(number("max_attempts", 6)),
            lease_seconds=_seconds(raw.get("lease", "PT2M"), "lease"),
        )

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """The wait before attempt ``attempts + 1``: exponential, capped, with +/- ``jitter`` spread."""
        base = min(self.max_delay_seconds, self.initial_seconds * self.multiplier ** max(0, attempts - 1))
        spread = (rng or random).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return timedelta(seconds=max(0.0, base * (1 + spread)))


@dataclass(frozen=True)
class Route:
    send: tuple[str, ...]
    fallback: tuple[str, ...]


@dataclass(frozen=True)
class Routes:
    """``delivery.routes``: role -> urgency -> {send, fallback}; ``default`` covers roles not listed."""

    table: Mapping[str, Mapping[str, Route]]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Routes:
        table: dict[str, dict[str, Route]] = {}
        for role, by_urgency in raw.items():
            table[str(role)] = {}
            for urgency, route in (by_urgency or {}).items():
                send = tuple(route.get("send") or ())
                fallback = tuple(route.get("fallback") or ())
                for channel in (*send, *fallback):
                    if channel not in CHANNELS:
                        raise ValueError(f"delivery.routes.{role}.{urgency}: unknown channel (one of {CHANNELS})")
                table[str(role)][str(urgency)] = Route(send, fallback)
        if "default" not in table:
            raise ValueError("delivery.routes needs a `default` entry")
        return cls(table)

    def route(self, role: str, urgency: str) -> Route:
        by_urgency = self.table.get(role) or self.table["default"]
        return by_urgency.get(urgency) or self.table["default"].get(urgency) or Route(("email",), ("sms",))


def resolve(channel: str, present: Collection[str], configured: Collection[str], route: Route) -> tuple[str, int]:
    """A new row's starting state and its place in the fallback order.

    ``present``: the channels the notification has rows for (its recipient has an address there);
    ``configured``: the channels a provider is configured for. If none of the ``send`` channels is usable, the
    first usable fallback is sent instead.
    """
    usable = [c for c in (*route.send, *route.fallback) if c in present and c in configured]
    if channel not in usable:
        return DeliveryState.SKIPPED, len(CHANNELS)
    sent_now = [c for c in route.send if c in usable] or usable[:1]
    if channel in sent_now:
        return DeliveryState.PENDING, 0
    return DeliveryState.STANDBY, 1 + usable.index(channel)


def after_failure(outcome: Outcome, attempts: int, ambiguous_resends: int, retry: Retry) -> str:
    """What a failed attempt leads to on this channel: ``retry``, ``resend`` (the one re-send after an ambiguous
    failure, marked as a possible duplicate) or ``give_up`` (move on to the next channel)."""
    if outcome is Outcome.PERMANENT:
        return "give_up"
    if outcome is Outcome.AMBIGUOUS:
        return "resend" if ambiguous_resends == 0 else "give_up"
    return "retry" if attempts < retry.max_attempts else "give_up"
