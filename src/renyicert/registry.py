"""The mechanism registry: plugins discovered through entry points, via pluggy.

This module holds the library's only global state: the registry of
mechanisms.  It is filled lazily, on the first lookup, so ``import renyicert``
stays cheap.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .mechanism import Mechanism

__all__ = [
    "build_mechanism",
    "resolve_mechanism",
    "DuplicateMechanismError",
    "MechanismInfo",
    "MechanismRegistry",
    "PluginLoadError",
    "UnknownMechanismError",
    "available_mechanisms",
    "get_mechanism",
    "mechanism_class",
    "register",
    "unregister",
]

#: The entry-point group renyicert plugins are announced under.
ENTRY_POINT_GROUP = "renyicert"
#: Set to a non-empty value other than ``0`` to skip entry-point loading.
DISABLE_AUTOLOAD_ENV = "RENYICERT_DISABLE_PLUGIN_AUTOLOAD"


class UnknownMechanismError(KeyError, ValueError):
    """No mechanism of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateMechanismError(ValueError):
    """Two providers claim the same mechanism name."""


class PluginLoadError(ImportError):
    """An entry point named a plugin that could not be imported or registered."""


@dataclass(frozen=True)
class MechanismInfo:
    """A registered mechanism: its name, the norm it certifies in, and who provides it."""

    name: str
    norm: float
    provider: str
    cls: type[Mechanism]


def _provider_of(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return f"entry point {ep.name} = {ep.value}"
    return f"{dist.metadata['Name']} {dist.version}"


class MechanismRegistry:
    """Mechanism classes by name, filled by plugins' ``renyicert_register_mechanisms`` hook.

    Use the module-level functions (:func:`get_mechanism`, :func:`register`, ...)
    rather than instantiating this class.
    """

    def __init__(self) -> None:
        self._entries: dict[str, MechanismInfo] = {}
        self._lock = threading.RLock()
        self._loaded = False
        self._current_provider = "in-process"

    # -- used by plugins ---------------------------------------------------
    def add(self, cls: type[Mechanism], *, provider: str | None = None) -> type[Mechanism]:
        """Register ``cls`` under ``cls.name``.

        Raises
        ------
        TypeError
            If ``cls`` is not a :class:`Mechanism` subclass.
        ValueError
            If ``cls.name`` is empty, ``cls.norm`` is not a number >= 1 or ``cls.fused_noise`` is not a kind the fused sampler draws.
        TypeError
            If ``cls.__init__`` takes ``*args`` or ``**kwargs`` or no ``scale`` (its parameters must be named).
        DuplicateMechanismError
            If another class already holds that name (the message names both providers).
        """
        if not (isinstance(cls, type) and issubclass(cls, Mechanism)):
            raise TypeError(f"can only register renyicert.Mechanism subclasses, got {cls!r}")
        name = cls.name
        if not isinstance(name, str) or not name:
            raise ValueError(f"{cls.__qualname__} must set a non-empty class attribute 'name'")
        try:
            norm = float(cls.norm)
        except (TypeError, ValueError):
            norm = float("nan")
        if not norm >= 1.0:
            raise ValueError(f"{cls.__qualname__}.norm must be a number >= 1 (1, 2, math.inf, ...), got {cls.norm!r}")
        if cls.fused_noise not in (None, "normal", "laplace"):
            raise ValueError(
                f"{cls.__qualname__}.fused_noise must be 'normal', 'laplace' or None, got {cls.fused_noise!r}"
            )
        cls.parameter_names()  # a constructor whose parameters cannot be read back is refused here, not at first use
        provider = provider or self._current_provider
        with self._lock:
            existing = self._entries.get(name)
            if existing is not None and existing.cls is not cls:
                raise DuplicateMechanismError(
                    f"mechanism name {name!r} is claimed twice: by {existing.cls.__module__}."
                    f"{existing.cls.__qualname__} ({existing.provider}) and by "
                    f"{cls.__module__}.{cls.__qualname__} ({provider})"
                )
            self._entries[name] = MechanismInfo(name, norm, provider, cls)
        return cls

    # -- loading -----------------------------------------------------------
    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("", "0"):
                return
            manager = pluggy.PluginManager("renyicert")
            manager.add_hookspecs(hookspecs)
            # pluggy's load_setuptools_entrypoints would do this too, but an import
            # error would surface without the entry point that caused it.
            seen: set[tuple[str, str]] = set()
            plugins: list[tuple[Any, str, importlib.metadata.EntryPoint]] = []
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                if (ep.name, ep.value) in seen:
                    continue
                seen.add((ep.name, ep.value))
                try:
                    plugin = ep.load()
                except Exception as error:
                    self._loaded = False
                    raise PluginLoadError(
                        f"renyicert plugin entry point '{ep.name} = {ep.value}' from {_provider_of(ep)} "
                        f"failed to import: {type(error).__name__}: {error}"
                    ) from error
                if manager.is_registered(plugin):
                    continue
                manager.register(plugin, name=f"{ep.name}:{ep.value}")
                plugins.append((plugin, ep.name, ep))
            try:
                manager.check_pending()
            except pluggy.PluginValidationError as error:
                self._loaded = False
                raise PluginLoadError(f"a renyicert plugin implements an unknown hook: {error}") from error
            origin = {id(plugin): ep for plugin, _, ep in plugins}
            # Each implementation is called on its own (in registration order) so that
            # every mechanism is recorded with the package that provides it.
            for impl in manager.hook.renyicert_register_mechanisms.get_hookimpls():
                ep = origin[id(impl.plugin)]
                self._current_provider = _provider_of(ep)
                try:
                    impl.function(registry=self)
                except DuplicateMechanismError:
                    self._loaded = False
                    raise
                except Exception as error:
                    self._loaded = False
                    raise PluginLoadError(
                        f"renyicert plugin entry point '{ep.name} = {ep.value}' from {_provider_of(ep)} "
                        f"failed to register its mechanisms: {type(error).__name__}: {error}"
                    ) from error
                finally:
                    self._current_provider = "in-process"

    # -- queries -----------------------------------------------------------
    def info(self) -> list[MechanismInfo]:
        """Every registered mechanism, sorted by name."""
        self._load()
        with self._lock:
            return sorted(self._entries.values(), key=lambda i: i.name)

    def lookup(self, name: str) -> type[Mechanism]:
        """The class registered under ``name``; :class:`UnknownMechanismError` lists the alternatives."""
        self._load()
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                known = (
                    ", ".join(sorted(self._entries))
                    or "none (is the package installed? see RENYICERT_DISABLE_PLUGIN_AUTOLOAD)"
                )
                raise UnknownMechanismError(f"unknown mechanism {name!r}; available: {known}")
            return entry.cls

    def remove(self, name: str) -> None:
        """Forget the mechanism ``name`` (no error if absent)."""
        with self._lock:
            self._entries.pop(name, None)


#: The process-wide registry: the library's only global state.
_REGISTRY = MechanismRegistry()


def available_mechanisms() -> list[MechanismInfo]:
    """The installed and registered mechanisms: name, norm and providing package.

    Examples
    --------
    >>> import renyicert
    >>> [(m.name, m.norm) for m in renyicert.available_mechanisms() if m.name in ("gaussian", "laplace")]
    [('gaussian', 2.0), ('laplace', 1.0)]
    """
    return _REGISTRY.info()


def get_mechanism(name: str, scale: float, **options: Any) -> Mechanism:
    """An instance of the mechanism registered as ``name``.

    Parameters
    ----------
    name
        Registry name, e.g. ``"gaussian"`` or ``"laplace"``.
    scale
        The noise scale (finite, > 0).
    **options
        Further keyword arguments of that mechanism's constructor.

    Raises
    ------
    UnknownMechanismError
        (a ``ValueError`` and ``KeyError``) listing the available names.

    Examples
    --------
    >>> import renyicert
    >>> renyicert.get_mechanism("gaussian", scale=0.25)
    Gaussian(scale=0.25)
    """
    if not isinstance(name, str):
        raise TypeError(f"mechanism name must be a string, got {name!r}")
    return build_mechanism(_REGISTRY.lookup(name), scale, options)


def mechanism_class(name: str) -> type[Mechanism]:
    """The class registered as ``name``; :class:`UnknownMechanismError` lists the alternatives.

    Examples
    --------
    >>> from renyicert.registry import mechanism_class
    >>> mechanism_class("laplace").parameter_names()
    ('scale',)
    """
    if not isinstance(name, str):
        raise TypeError(f"mechanism name must be a string, got {name!r}")
    return _REGISTRY.lookup(name)


def build_mechanism(cls: type[Mechanism], scale: float, params: dict[str, Any] | None = None) -> Mechanism:
    """``cls(scale, **params)``, with a ``ValueError`` naming an unknown or a missing parameter first.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.registry import build_mechanism
    >>> gaussian = type(renyicert.get_mechanism("gaussian", scale=1.0))
    >>> build_mechanism(gaussian, 0.5, {"sigma": 2})
    Traceback (most recent call last):
    ...
    ValueError: gaussian has no parameter 'sigma'; its parameters are ['scale']
    """
    import inspect

    params = dict(params or {})
    label = cls.name or cls.__name__
    names = cls.parameter_names()
    if "scale" in params:
        raise ValueError(f"give the scale of {label} as scale, not as a parameter")
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"{label} has no parameter {unknown[0]!r}; its parameters are {list(names)}")
    signature = inspect.signature(cls.__init__).parameters
    missing = [n for n in names[1:] if n not in params and signature[n].default is inspect.Parameter.empty]
    if missing:
        raise ValueError(f"{label} needs the parameter {missing[0]!r} (on the command line: -o {missing[0]}=VALUE)")
    return cls(scale, **params)


def resolve_mechanism(
    mechanism: Mechanism | type[Mechanism] | str, scale: float | None = None, params: dict[str, Any] | None = None
) -> Mechanism:
    """A mechanism instance from an instance, a :class:`Mechanism` subclass or a registered name.

    A name or a class needs ``scale`` (and ``params``, its other constructor
    arguments, where it has required ones); an instance may be given a scale
    too, which must then be its own, and no ``params``.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.registry import resolve_mechanism
    >>> resolve_mechanism("laplace", 0.5)
    Laplace(scale=0.5)
    >>> resolve_mechanism(renyicert.get_mechanism("gaussian", scale=0.25))
    Gaussian(scale=0.25)
    """
    if isinstance(mechanism, Mechanism):
        if scale is not None and scale != mechanism.scale:
            raise ValueError(f"scale={scale!r} disagrees with the mechanism's scale {mechanism.scale!r}")
        if params:
            raise ValueError(
                f"{mechanism!r} is built already; give parameters only with a name or a class (or use mechanism.replace)"
            )
        return mechanism
    if isinstance(mechanism, str) or (isinstance(mechanism, type) and issubclass(mechanism, Mechanism)):
        if scale is None:
            raise ValueError(
                f"give scale= with the mechanism {mechanism if isinstance(mechanism, str) else mechanism.__name__!r}"
            )
        cls = _REGISTRY.lookup(mechanism) if isinstance(mechanism, str) else mechanism
        return build_mechanism(cls, scale, params)
    raise TypeError(f"mechanism must be a Mechanism, a Mechanism subclass or a registered name, got {mechanism!r}")


def register(cls: type[Mechanism]) -> type[Mechanism]:
    """Register a mechanism class in this process (notebooks, tests); usable as a decorator.

    Examples
    --------
    >>> import renyicert
    >>> @renyicert.register
    ... class Doubled(renyicert.get_mechanism("gaussian", scale=1.0).__class__):
    ...     name = "doubled-gaussian"
    >>> renyicert.get_mechanism("doubled-gaussian", scale=2.0).scale
    2.0
    >>> renyicert.unregister("doubled-gaussian")
    """
    _REGISTRY._load()
    return _REGISTRY.add(cls, provider=f"in-process ({cls.__module__})")


def unregister(name: str) -> None:
    """Remove the mechanism ``name`` from this process's registry (no error if absent)."""
    _REGISTRY.remove(name)
