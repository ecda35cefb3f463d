"""The firmware / server version string devices report in their health."""

from importlib.metadata import PackageNotFoundError, version

try:
    FIRMWARE = version("kuaichu")
except PackageNotFoundError:  # running from a source tree that was never installed
    FIRMWARE = "0+unknown"
