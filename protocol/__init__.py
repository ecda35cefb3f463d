"""The contract between Kuaichu devices and the central server.

Both ends import this package and nothing else of each other: MQTT topic names, message models
(with their JSON Schema) and the one exception a malformed message raises.
"""

from protocol.errors import ProtocolError

__all__ = ["ProtocolError"]
