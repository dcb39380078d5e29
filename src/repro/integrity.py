"""Damaged artifacts are detected, not half-read: checks of checkpoint folders before a model is loaded.

A checkpoint written by a run that was killed mid-save, or copied partially, can still load (a short
`model.safetensors` may fail deep inside transformers, or not at all for a sharded model missing a
shard). `check_checkpoint(folder)` reads only headers: `config.json` parses, every `*.safetensors` file
is as long as its header says, and every shard an index names exists. Problems are a ReproError (exit 2)
naming the file.

    check_checkpoint(model_dir / "checkpoints" / "step-100")
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from repro.errors import ReproError


def _bad(path: Path, what: str) -> ReproError:
    return ReproError(f"{path}: {what}", exit_code=2)


def check_safetensors(path: Path) -> None:
    """Raise if `path` is not a complete safetensors file (header length, header JSON, data length)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _bad(path, f"truncated safetensors file ({size} bytes, no header)")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise _bad(path, f"truncated safetensors file: header of {n} bytes, file of {size}")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise _bad(path, "damaged safetensors header (not JSON)") from None
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise _bad(path, f"truncated safetensors file: {size} bytes, the header describes {8 + n + end}")


def check_checkpoint(folder: Path) -> None:
    """Raise (exit 2, naming the file) if the checkpoint folder is missing, incomplete or damaged."""
    if not folder.is_dir():
        raise _bad(folder, "checkpoint folder not found")
    cfg = folder / "config.json"
    if cfg.exists():
        try:
            json.loads(cfg.read_text())
        except ValueError:
            raise _bad(cfg, "damaged config.json (not JSON)") from None
    for index in folder.glob("*.safetensors.index.json"):
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (ValueError, KeyError, TypeError):
            raise _bad(index, "damaged shard index") from None
        for s in sorted(shards):
            if not (folder / s).is_file():
                raise _bad(folder / s, f"shard named by {index.name} is missing")
    weights = sorted(folder.glob("*.safetensors"))
    if cfg.exists() and not weights and not list(folder.glob("*.bin")):
        raise _bad(folder, "checkpoint has config.json but no weights")
    for w in weights:
        check_safetensors(w)
