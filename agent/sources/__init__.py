"""Reading sources: the port the agent polls, and the built-in simulated meters."""

from agent.sources.base import Source

__all__ = ["Source"]
