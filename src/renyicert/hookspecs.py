"""The hooks a renyicert plugin implements: the plugin author's manual.

A plugin is a module (or object) exposing functions marked with
:data:`renyicert.hookimpl`.  Installed packages announce their plugin module
through the ``renyicert`` entry-point group::

    [project.entry-points.renyicert]
    my_noise = "my_package.plugin"

renyicert loads every such module the first time a mechanism is looked up
(not at ``import renyicert``), then calls the hooks below.  The built-in
Gaussian and Laplace mechanisms are registered exactly this way.  Set the
environment variable ``RENYICERT_DISABLE_PLUGIN_AUTOLOAD=1`` to skip
entry-point loading (only mechanisms added with :func:`renyicert.register`
are then available).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .registry import MechanismRegistry

__all__ = ["hookspec", "hookimpl", "renyicert_register_mechanisms"]

#: Marks the hook specifications below (project name ``"renyicert"``).
hookspec = pluggy.HookspecMarker("renyicert")
#: Marks a plugin's hook implementations: ``@renyicert.hookimpl``.
hookimpl = pluggy.HookimplMarker("renyicert")


@hookspec
def renyicert_register_mechanisms(registry: MechanismRegistry) -> None:
    """Add the plugin's mechanisms to ``registry``.

    Called once per plugin, when the registry is first used.  Call
    ``registry.add(MechanismClass)`` for each :class:`renyicert.Mechanism`
    subclass the plugin provides; the class's ``name`` must be unique among all
    installed plugins, or loading fails with an error naming both providers.

    Parameters
    ----------
    registry
        The :class:`renyicert.MechanismRegistry` being filled.

    Returns
    -------
    None
        Implementations return nothing; their effect is the ``registry.add`` calls.

    Examples
    --------
    In ``my_package/plugin.py``::

        import renyicert

        class Cauchy(renyicert.Mechanism):
            name = "cauchy"
            ...

        @renyicert.hookimpl
        def renyicert_register_mechanisms(registry):
            registry.add(Cauchy)
    """
