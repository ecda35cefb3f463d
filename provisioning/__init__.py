"""The provisioning station: the fleet's certificate authority, the broker's TLS and ACL files,
and the bundle a field technician carries to each device.
"""
