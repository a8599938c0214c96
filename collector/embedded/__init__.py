"""Embedded servers for the demo and for tests on machines without PostgreSQL or Mosquitto.

Nothing here runs in production: operators point Tally at their own PostgreSQL/TimescaleDB and
MQTT broker (see docs/operations.md).
"""
