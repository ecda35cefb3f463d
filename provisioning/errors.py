"""The one exception the provisioning tools raise for an operator to read."""

from __future__ import annotations


class ProvisioningError(Exception):
    """A refusal or failure the operator can act on; the message says what to do."""
