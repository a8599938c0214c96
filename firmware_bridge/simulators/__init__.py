"""Protocol simulators: servers and generators that behave like the real meters (tests, demos)."""
