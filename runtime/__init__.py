"""What the device, the server, provisioning and the benchmarks all run on: the MQTT session, backoff,
configuration files, WebRTC peers and ICE servers, logging, the event-loop runner and the version.

Kept apart from ``kuaichu/`` so that the command line is only a command line: a Pi's firmware and a
server worker import this package, never the CLI.
"""
