"""Offline data that libraries expect to download at run time, written by `scripts/setup.sh`."""
