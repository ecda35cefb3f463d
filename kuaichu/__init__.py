"""The ``kuaichu`` command and the few pieces every part of the stack shares (config files, logging)."""
