"""Registries by name: tasks, teachers, filters, analyses, generation backends — built-in or from plugins.

Each entry is registered with a decorator and looked up by the name a spec uses; each entry carries a
strict pydantic `Args` model that `repro validate` checks a spec's arguments against. An unknown name
raises a KeyError whose message lists the known names, which the spec validator turns into a clear error.

A registry loads lazily, on first lookup: its built-in modules, then the Python entry points of its group
(`repro.tasks`, `repro.teachers`, `repro.filters`, `repro.analyses`, `repro.backends`), so a user's own
package adds components that specs then name, without editing this one (as lm-eval's `--include_path`):

    # pyproject.toml of a plugin package
    [project.entry-points."repro.tasks"]
    my_task = "my_pkg.tasks"          # a module whose import registers tasks (@TASKS.register(...))

An entry point may also name an object (`my_pkg.tasks:MyTask`): if loading it registered nothing under
the entry point's name, the object itself is registered under that name. A plugin that fails to import,
or registers a name twice, stops with a one-line error naming the plugin (exit 2).
"""

from __future__ import annotations

import importlib
import logging
from importlib import metadata
from typing import Any, Callable, Generic, Iterator, TypeVar

from repro.errors import ReproError

log = logging.getLogger(__name__)
T = TypeVar("T")


class PluginError(ReproError):
    """A plugin (entry point) could not be loaded or registered: bad input, exit 2."""

    exit_code = 2


class Registry(Generic[T]):
    """A named collection of components of one kind (e.g. all tasks), loaded lazily."""

    def __init__(self, kind: str, group: str | None = None, builtins: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.group = group
        self.builtins = builtins
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._loaded = False
        self._loading: str | None = None

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register `obj` under `name` (names are unique per registry)."""

        def deco(obj: T) -> T:
            origin = self._loading or getattr(obj, "__module__", "?")
            if name in self._items:
                raise PluginError(f"{self.kind} {name!r} is registered twice: by {self._origin[name]} and by {origin}")
            self._items[name] = obj
            self._origin[name] = origin
            return obj

        return deco

    def load(self) -> None:
        """Import the built-in modules, then every entry point of the group (once)."""
        if self._loaded:
            return
        self._loaded = True
        for mod in self.builtins:
            importlib.import_module(mod)
        if self.group:
            for ep in metadata.entry_points(group=self.group):
                self._load_entry_point(ep)

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        where = f"plugin {ep.name} = {ep.value!r} (entry point group {self.group}"
        dist = getattr(ep, "dist", None)
        where += f", package {dist.name})" if dist is not None else ")"
        self._loading = where
        try:
            try:
                obj: Any = ep.load()
            except PluginError:
                raise
            except Exception as e:  # noqa: BLE001 - any import failure of a user's plugin is bad input
                raise PluginError(f"{where}: cannot be loaded: {type(e).__name__}: {e}") from None
            if ep.name not in self._items and not isinstance(obj, type(importlib)):
                if not hasattr(obj, "Args"):
                    raise PluginError(f"{where}: {ep.value} has no `Args` model, so specs naming it cannot be checked")
                self.register(ep.name)(obj)
        finally:
            self._loading = None
        log.debug("loaded %s", where)

    def get(self, name: str) -> T:
        self.load()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        self.load()
        return sorted(self._items)

    def origin(self, name: str) -> str:
        """Where `name` was registered: a module, or the plugin entry point."""
        self.get(name)
        return self._origin[name]
