"""Modbus TCP/RTU meters: register maps, a pure decoder and the polling adapter."""
