"""hubswarm tasks: one module per concern, on top of :mod:`tasks.core`."""
