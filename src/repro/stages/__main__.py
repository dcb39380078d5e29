"""`python -m repro.stages --update`: record each stage's version and source hash (after a version bump)."""

import sys

from repro.stages import STAGES, recorded_sources, source_hash, update_sources

if __name__ == "__main__":
    if "--update" in sys.argv:
        update_sources()
    rec = recorded_sources()
    for s in STAGES:
        r = rec.get(s.name, {})
        state = "ok" if r.get("source_sha256") == source_hash(s.name) and r.get("version") == s.version else "CHANGED"
        print(f"{s.name:<9} v{s.version}  {state}")
