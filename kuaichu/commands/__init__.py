"""One module per top-level subcommand; each has ``register(subparsers)``."""
