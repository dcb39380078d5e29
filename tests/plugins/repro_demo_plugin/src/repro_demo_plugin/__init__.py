"""repro-demo-plugin: components a user adds to repro from their own package (see components.py)."""
