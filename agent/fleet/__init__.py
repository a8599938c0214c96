"""A simulated fleet: many agents in one process, through the real agent code paths.

``clocks`` compresses time (and jumps it), ``meters`` are household meters with daily and
seasonal profiles, resets and rollovers, ``plan`` decides (pure, seeded) which device gets which
fault, ``simulator`` runs the agents (real ``SqliteBuffer``, ``Agent``, ``MqttPublisher``) in one
asyncio loop, with outages that stop and restart an agent on the same buffer file. Used by
``bench/fleet.py`` and the fleet tests; never by a deployed agent.
"""
