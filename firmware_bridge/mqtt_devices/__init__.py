"""Smart plugs and relays reporting energy over MQTT: Shelly (Gen1, Gen2+) and Tasmota."""
