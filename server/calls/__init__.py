"""Live calls on the server: the aiortc peer per call, the relay to consoles, the recording."""
