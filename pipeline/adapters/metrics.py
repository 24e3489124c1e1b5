"""Prometheus metrics, served at /metrics by the API and the embedded runtime."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter("safeguard_events_consumed_total", "Records taken from event topics", ["event_type"])
EVENTS_PROCESSED = Counter("safeguard_events_processed_total", "Events whose effects committed", ["event_type"])
EVENTS_DEAD_LETTERED = Counter("safeguard_events_dead_lettered_total", "Inputs kept as dead letters", ["source"])
NOTIFICATIONS_SENT = Counter("safeguard_notifications_sent_total",
                             "Notifications a channel accepted for a real contact")
DELIVERY_ATTEMPTS = Counter("safeguard_delivery_attempts_total", "Delivery attempts by channel and outcome",
                            ["channel", "outcome"])
WORK_WAITING = Gauge("safeguard_work_waiting", "Read at each scrape: events_waiting (accepted, not yet processed), "
                     "events_held (their handler kept failing), deadlines_overdue (open and due)", ["what"])
OUTBOX_RELAY_FAILURES = Counter("safeguard_outbox_relay_failures_total",
                                "Outbox relay passes that failed (records kept, relayed on a later pass)")
DELIVERY_RETRIES_WAITING = Gauge("safeguard_delivery_retries_waiting", "Deliveries waiting for a retry")
NOTIFICATIONS_UNDELIVERED = Counter("safeguard_notifications_undelivered_total",
                                    "Notifications that no channel delivered")
DELIVERY_SECONDS = Histogram("safeguard_delivery_seconds", "From notification stored to a provider accepting it",
                             buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
DEADLINES_FIRED = Counter("safeguard_deadline_steps_fired_total", "Ladder steps fired by the sweep")
PROCESSING_SECONDS = Histogram("safeguard_processing_seconds", "Time to process one event", ["event_type"])
CONSUMER_LAG = Gauge("safeguard_consumer_lag", "Records on event topics not yet consumed by the workers",
                     ["topic"])


def refresh_consumer_lag(bootstrap: str, group: str, prefix: str = "") -> None:
    """Set CONSUMER_LAG from the group's committed offsets and the topics' end offsets (at scrape time)."""
    from kafka import KafkaConsumer, TopicPartition

    from pipeline.codec import EVENT_TYPES

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        for event_type in EVENT_TYPES:
            partitions = consumer.partitions_for_topic(prefix + event_type) or set()
            tps = [TopicPartition(prefix + event_type, p) for p in partitions]
            ends = consumer.end_offsets(tps) if tps else {}
            CONSUMER_LAG.labels(event_type).set(sum(end - (consumer.committed(tp) or 0) for tp, end in ends.items()))
    finally:
        consumer.close()
