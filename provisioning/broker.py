"""The broker's side of the fleet: a Mosquitto configuration and ACL that run as written.

The ACL is by pattern: ``%u`` is the user name, which the broker takes from the client
certificate's CN (``use_identity_as_username``), so one set of lines confines every device to its
own subtree, and a new device needs no broker change. Within its subtree a device may only write
what it sends and only read what it receives: it cannot forge an acknowledgement or a command for
itself. Server workers are named one by one and may use the whole tree, ``$share`` included.

Two listeners. On the devices' one the broker also forces the client id to be that user name
(``use_username_as_clientid``): MQTT lets a client pick its id, and the broker closes whichever
connection held an id when another takes it, so one valid device certificate could otherwise keep
any other unit off the broker. The server's connections (intake and call signalling in each worker,
several workers) need ids of their own, so they connect to a second listener that trusts only the
workers' CA (``ca/workers.crt``), which never signs a device certificate: no device can connect
there with an id of its choosing.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from protocol.topics import DEVICE_ROOT, PREFIX, Channel


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"


# What a device does with each channel of its own subtree (see docs/protocol.md, the topic tree).
DEVICE_ACCESS: dict[Channel, Access] = {
    Channel.REPORT: Access.WRITE,
    Channel.ACK: Access.READ,
    Channel.STATE: Access.WRITE,  # its online message and the broker-published last will
    Channel.HEARTBEAT: Access.WRITE,
    Channel.CMD: Access.READ,
    Channel.SELFTEST: Access.WRITE,
    Channel.CALL: Access.WRITE,
    Channel.SCENE: Access.WRITE,
    Channel.UPLOAD: Access.WRITE,
    Channel.PLATES: Access.WRITE,
}

CONF_NAME = "mosquitto.conf"
ACL_NAME = "acl"
CA_NAME = "ca.crt"
WORKERS_CA_NAME = "workers-ca.crt"  # what the server workers' listener trusts
CERT_NAME = "server.crt"
KEY_NAME = "server.key"
CRL_NAME = "crl.pem"


def acl_text(server_users: Iterable[str]) -> str:
    lines = [
        "# Kuaichu broker ACL, written by `kuaichu provision`; regenerate it rather than edit it.",
        "# Devices: each only under kc/v1/dev/<its certificate CN>/, writing what it sends, reading what it receives.",
    ]
    lines += [f"pattern {access} {DEVICE_ROOT}/%u/{channel}" for channel, access in DEVICE_ACCESS.items()]
    lines.append("# Server workers: the whole tree, shared subscriptions included.")
    for user in sorted(set(server_users)):
        lines += [f"user {user}", f"topic readwrite {PREFIX}/#"]
    return "\n".join(lines) + "\n"


def mosquitto_conf(broker_dir: Path, port: int, server_port: int) -> str:
    """A complete ``mosquitto.conf``: the devices' and the server workers' mutual-TLS listeners, no
    anonymous access, the devices' CRL checked."""
    d = broker_dir.resolve()
    return f"""# Kuaichu broker, written by `kuaichu provision init`. Run: mosquitto -c {d / CONF_NAME}
# Reload after a revocation: the CRL is read when the broker starts (see docs/provisioning.md).
per_listener_settings false
allow_anonymous false
acl_file {d / ACL_NAME}

# Devices: the client id is forced to the certificate's CN, so no unit can take another's.
listener {port}
protocol mqtt
cafile {d / CA_NAME}
certfile {d / CERT_NAME}
keyfile {d / KEY_NAME}
crlfile {d / CRL_NAME}
tls_version tlsv1.2
require_certificate true
use_identity_as_username true
use_username_as_clientid true

# Server workers: certificates of the workers' CA only; each connection keeps its own client id.
listener {server_port}
protocol mqtt
cafile {d / WORKERS_CA_NAME}
certfile {d / CERT_NAME}
keyfile {d / KEY_NAME}
tls_version tlsv1.2
require_certificate true
use_identity_as_username true

persistence false
max_inflight_messages 100
max_queued_messages 10000
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
"""


def write_acl(broker_dir: Path, server_users: Iterable[str]) -> None:
    from provisioning.ca import replace_file

    replace_file(broker_dir / ACL_NAME, acl_text(server_users).encode(), 0o644)


def write_conf(broker_dir: Path, port: int, server_port: int) -> None:
    from provisioning.ca import replace_file

    replace_file(broker_dir / CONF_NAME, mosquitto_conf(broker_dir, port, server_port).encode(), 0o644)
