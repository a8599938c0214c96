"""Generic sources: a number parsed from a command's output or from a file."""
