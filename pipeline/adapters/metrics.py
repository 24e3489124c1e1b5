"""Prometheus metrics, served at /metrics by the API and the embedded runtime."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_CONSUMED = Counter("safeguard_events_consumed_total", "Records taken from event topics", ["event_type"])
EVENTS_PROCESSED = Counter("safeguard_events_processed_total", "Events whose effects committed", ["event_type"])
EVENTS_DEAD_LETTERED = Counter("safeguard_events_dead_lettered_total", "Inputs kept as dead letters", ["source"])
NOTIFICATIONS_SENT = Counter("safeguard_notifications_sent_total", "Notifications delivered to a channel")
DEADLINES_FIRED = Counter("safeguard_deadline_steps_fired_total", "Ladder steps fired by the sweep")
PROCESSING_SECONDS = Histogram("safeguard_processing_seconds", "Time to process one event", ["event_type"])
