"""Training and evaluation of the plate reader's models (run with models/.venv-train for training)."""
