"""Shipped register maps (data files): one ``<name>.toml`` per meter model."""
