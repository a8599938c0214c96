"""Adapters from real meter protocols and device payloads into Tally agent readings.

Where things are::

    registry.py            build(type, name, options, state) -> Source: the agent's entry point
    options.py             validated options of each source type (msgspec structs, config boundary)
    errors.py              the exception tree (BridgeError, DecodeError, FrameError, ...)
    measurement.py         the value a pure decoder returns; to_readings() attaches the meter
    buffer.py              bounded buffer for push sources (MQTT, HTTP, UDP, serial streams)
    serial_stream.py       byte streams from a serial port or TCP
    modbus/                register maps (maps/*.toml), pure decoder, pymodbus polling adapter
    dsmr/                  P1 framer (pure), telegram decoder (dsmr-parser), stream adapter
    iec62056/              mode C data block + OBIS decoding (pure), optical readout adapter
    senml/                 RFC 8428 resolution (pure), readings/batches, HTTP and UDP servers
    mqtt_devices/          Shelly and Tasmota payload decoders (pure), broker subscriber
    command/               number-from-command-output and number-from-file sources
    simulators/            meters and devices for tests and demos (Modbus, P1, IEC, SenML)
    cli.py                 ``tally-bridge``: simulate, decode, probe
"""

__version__ = "0.1.0"
