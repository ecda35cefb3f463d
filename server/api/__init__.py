"""The console's HTTP API and WebSocket (FastAPI); one module per resource."""
