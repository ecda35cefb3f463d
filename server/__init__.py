"""Central server: intake, cases, console."""
