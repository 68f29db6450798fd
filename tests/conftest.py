"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import renyicert


@pytest.fixture
def registered_mechanism() -> Iterator[Callable[[type[renyicert.Mechanism]], type[renyicert.Mechanism]]]:
    """Register mechanism classes for one test only: ``registered_mechanism(MyMechanism)``."""
    names: list[str] = []

    def add(cls: type[renyicert.Mechanism]) -> type[renyicert.Mechanism]:
        renyicert.register(cls)
        names.append(cls.name)
        return cls

    yield add
    for name in names:
        renyicert.unregister(name)


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> renyicert.MechanismRegistry:
    """An empty, not-yet-loaded registry in place of the process-wide one."""
    from renyicert import registry

    fresh = registry.MechanismRegistry()
    monkeypatch.setattr(registry, "_REGISTRY", fresh)
    return fresh
