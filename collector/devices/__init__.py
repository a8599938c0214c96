"""Device identity: enrollment codes, device records and their lifecycle, broker access rules.

Pure core (no I/O, time passed in): ``codes`` (one-time enrollment codes), ``model`` (frozen
records and lifecycle rules), ``guessing`` (rate limiting of code attempts), ``topics`` (the
topics a device may use), ``dynsec`` (Mosquitto dynamic-security command documents),
``remote_config`` (the versioned configuration document a device receives).
Port + fake: ``broker_port`` / ``broker_fake``; adapter: ``broker_dynsec`` (paho-mqtt).
Orchestration: ``service`` (storage + broker, used by the API and the CLI), ``wiring`` (builds
it from the configuration), ``cli`` (``tally-collector devices …``); ``fleet`` (pure fleet view).
"""
