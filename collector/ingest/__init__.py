"""Ingest: MQTT messages in, decoded batches stored and acknowledged.

``messages`` (value objects) → ``decoders`` (topic filter → decode function) → ``planning``
(pure: messages to a flush plan) → ``ports.IngestStore`` (one transaction) → ``writer``
(drains the queue, retries with backoff, acknowledges) ← ``mqtt_consumer`` (the paho adapter).
"""
