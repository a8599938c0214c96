"""DSMR P1 smart-meter telegrams: an incremental framer, the decoder and the reading adapter."""
