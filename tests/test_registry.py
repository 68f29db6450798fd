from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import renyicert
from renyicert import registry


def _install_fake_distribution(root: Path, dist: str, module: str, source: str, entry_name: str) -> None:
    """A real distribution on sys.path: a module plus a .dist-info with an entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[renyicert]\n{entry_name} = {module}\n")


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("fake_renyicert_")]:
        del sys.modules[name]


THIRD_PARTY = """
    import numpy as np
    import renyicert

    class GaussianLinf(renyicert.Mechanism):
        '''Gaussian noise certifying l-inf through ||d||_2 <= sqrt(n) ||d||_inf.'''
        name = "gaussian-linf-test"
        norm = float("inf")
        dimension = 4

        def _sample(self, shape, generator, dtype, device):
            import torch
            return self.scale * torch.randn(shape, generator=generator, dtype=dtype, device=device)

        def _divergence(self, order, distance):
            return order * self.dimension * distance**2 / (2 * self.scale**2)

    @renyicert.hookimpl
    def renyicert_register_mechanisms(registry):
        registry.add(GaussianLinf)
"""


def test_builtins_are_discovered_through_entry_points() -> None:
    names = {info.name: info for info in renyicert.available_mechanisms()}
    assert names["gaussian"].norm == 2 and names["laplace"].norm == 1
    assert names["gaussian"].provider.startswith("renyicert ")
    assert names["gaussian"].cls.__module__ == "renyicert_gaussian"


def test_third_party_plugin_is_discovered_and_certifies(plugin_dir: Path, fresh_registry) -> None:
    _install_fake_distribution(plugin_dir, "fake-linf", "fake_renyicert_linf", THIRD_PARTY, "linf")
    infos = {info.name: info for info in renyicert.available_mechanisms()}
    assert infos["gaussian-linf-test"].provider == "fake-linf 1.0"
    assert infos["gaussian-linf-test"].norm == float("inf")
    mechanism = renyicert.get_mechanism("gaussian-linf-test", scale=1.0)
    radius = float(renyicert.certified_radius(mechanism, 0.9, 0.1).radius)
    l2 = float(renyicert.certified_radius(renyicert.get_mechanism("gaussian", scale=1.0), 0.9, 0.1).radius)
    assert radius == pytest.approx(l2 / 2, rel=1e-9)  # sqrt(dimension) = 2


def test_plugin_that_fails_to_import_is_reported_with_its_entry_point(plugin_dir: Path, fresh_registry) -> None:
    _install_fake_distribution(
        plugin_dir, "fake-broken", "fake_renyicert_broken", "import does_not_exist_anywhere\n", "broken"
    )
    with pytest.raises(
        renyicert.PluginLoadError, match=r"'broken = fake_renyicert_broken' from fake-broken 1.0 failed to import"
    ):
        renyicert.available_mechanisms()


def test_two_plugins_claiming_one_name_are_both_named(plugin_dir: Path, fresh_registry) -> None:
    clash = THIRD_PARTY.replace('"gaussian-linf-test"', '"gaussian"')
    _install_fake_distribution(plugin_dir, "fake-clash", "fake_renyicert_clash", clash, "clash")
    with pytest.raises(renyicert.DuplicateMechanismError) as info:
        renyicert.available_mechanisms()
    message = str(info.value)
    assert "'gaussian' is claimed twice" in message
    assert "renyicert 0.1.0" in message and "fake-clash 1.0" in message


def test_misspelt_hook_is_an_error(plugin_dir: Path, fresh_registry) -> None:
    typo = THIRD_PARTY.replace("def renyicert_register_mechanisms", "def renyicert_register_mechanism")
    _install_fake_distribution(plugin_dir, "fake-typo", "fake_renyicert_typo", typo, "typo")
    with pytest.raises(renyicert.PluginLoadError, match="unknown hook"):
        renyicert.available_mechanisms()


def test_autoload_can_be_switched_off(monkeypatch: pytest.MonkeyPatch, fresh_registry) -> None:
    monkeypatch.setenv(registry.DISABLE_AUTOLOAD_ENV, "1")
    assert renyicert.available_mechanisms() == []
    with pytest.raises(renyicert.UnknownMechanismError, match="unknown mechanism 'gaussian'; available: none"):
        renyicert.get_mechanism("gaussian", scale=1.0)


def test_unknown_name_lists_what_is_available() -> None:
    with pytest.raises(ValueError, match="unknown mechanism 'gauss'; available: .*gaussian, laplace"):
        renyicert.get_mechanism("gauss", scale=1.0)


def test_in_process_registration_for_one_test(registered_mechanism) -> None:
    base = type(renyicert.get_mechanism("gaussian", scale=1.0))

    class Wide(base):  # type: ignore[misc, valid-type]
        name = "wide-test"

    registered_mechanism(Wide)
    assert renyicert.get_mechanism("wide-test", scale=3.0).scale == 3.0
    with pytest.raises(renyicert.DuplicateMechanismError, match="wide-test"):

        class Other(base):  # type: ignore[misc, valid-type]
            name = "wide-test"

        renyicert.register(Other)


def test_fixture_registration_does_not_leak() -> None:
    assert "wide-test" not in {info.name for info in renyicert.available_mechanisms()}


def test_registration_checks_the_class() -> None:
    with pytest.raises(TypeError, match="Mechanism subclasses"):
        renyicert.register(object)  # type: ignore[arg-type]

    class Nameless(renyicert.Mechanism):
        pass

    with pytest.raises(ValueError, match="non-empty class attribute 'name'"):
        renyicert.register(Nameless)

    class BadNorm(renyicert.Mechanism):
        name = "bad-norm"
        norm = 0.5

    with pytest.raises(ValueError, match="norm must be a number >= 1"):
        renyicert.register(BadNorm)


def test_loading_is_lazy(fresh_registry) -> None:
    assert not fresh_registry._loaded
    renyicert.available_mechanisms()
    assert fresh_registry._loaded
    np.testing.assert_equal(len(renyicert.available_mechanisms()) >= 2, True)


def test_registering_refuses_an_unknown_fused_kind_and_unnamed_parameters() -> None:
    from .bad_mechanisms import Gaussian

    class Typo(Gaussian):
        name = "typo-fused"
        fused_noise = "gauss"

    with pytest.raises(ValueError, match="fused_noise must be 'normal', 'laplace' or None, got 'gauss'"):
        renyicert.register(Typo)

    class Starred(Gaussian):
        name = "starred"

        def __init__(self, scale: float, **options: object) -> None:
            super().__init__(scale)

    with pytest.raises(TypeError, match="takes \\*options; a mechanism's parameters must be named"):
        renyicert.register(Starred)
