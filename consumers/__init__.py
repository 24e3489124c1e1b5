"""Stream consumers: they decode, hand each event to ``pipeline.service.handlers`` and return.

``intake_consumer`` drives the embedded runtime from the durable intake table; the faust agents drive the
Kafka runtime from topics. Both call the same handlers inside one transaction per event.
"""
