"""The sequential methods of :class:`~renyicert.Smoothed`: ``certify_at`` and ``certify_at_stream``.

A mixin of :class:`~renyicert.Smoothed` (which inherits them): how many noisy
copies an input gets is decided as they come, by :mod:`renyicert.sequential`,
instead of fixed in advance as in :meth:`~renyicert.Smoothed.certify`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ._engine.engine import noise_keys
from ._progress import progress_bar
from ._validation import check_alpha, check_batch_size, check_positive_int, check_seed
from .sequential import SequentialCertificate, certify_stream, check_extended_budget
from .sequential_rule import decision_rule

__all__ = ["SequentialMethods"]


class SequentialMethods:
    """``Smoothed.certify_at`` and ``Smoothed.certify_at_stream`` (see :class:`~renyicert.Smoothed` for the attributes they use)."""

    mechanism: Any
    num_classes: int
    batch_size: int | str
    progress: bool | None
    _engine: Any

    def _as_batch(self, x: Any) -> tuple[Any, bool]:  # pragma: no cover - Smoothed's
        raise NotImplementedError

    def certify_at(
        self,
        x: Any,
        radii: Any,
        alpha: float = 0.001,
        *,
        budget: int = 100_000,
        extended_budget: int | None = None,
        n0: int = 100,
        bound: str = "renyi",
        p2_mode: str = "runner-up",
        batch_size: int | str | None = None,
        inputs_at_once: int | None = None,
        seed: int | None = None,
        generator: Any = None,
        decision_test: str = "ordered",
    ) -> Any:
        """Decide, sequentially, whether each input is certified at each of ``radii``: a :class:`SequentialCertificate` or a list of them.

        Selection as in :meth:`certify` (``n0`` copies pick the candidate class),
        then fresh copies until a confidence sequence for the candidate's
        probability has left the threshold of every radius, or ``budget``
        estimation copies are spent (see :mod:`renyicert.sequential`).  An input
        with ``p1 = 0.999`` is decided at a radius whose threshold is 0.9 after a
        few hundred copies, where :meth:`certify` spends ``n`` on every input.

        Guarantee: for each input, the probability that any of its "certified"
        answers is wrong is at most ``alpha``, under this data-dependent
        stopping (an anytime-valid confidence sequence, Ville's inequality), with
        every radius decided from the same copies.

        Parameters
        ----------
        x
            One input or a batch; input ``i`` of a batch gets key ``seed + i``,
            and its answers are those it gets alone with that seed.
        radii
            One radius or an increasing list, in the mechanism's norm.
        alpha
            Failure probability per input, for all its radii together and any stopping
            time within this call; a new call (a new seed) for the same input spends it again.
        budget
            Most estimation copies per input (default 100,000); where it runs out
            the open radii are ``undecided`` (not certified).
        extended_budget
            Optional, ``>= budget``: an input still undecided at ``budget`` goes on,
            up to this many copies, for the radii the sequence would certify by then
            if its estimate were the truth (the ones more copies would most likely certify).
        n0
            Selection copies.
        bound
            ``"renyi"`` (Li et al. 2019) or ``"tight"`` (the mechanism's tight
            certificate): each radius's threshold is the smallest ``p1`` whose
            radius under this bound, with ``p2 = 1 - p1``, reaches it.
        p2_mode
            ``"runner-up"`` (as in :meth:`certify`: a lower sequence for ``p1`` at
            ``alpha / 2`` and an upper one for every other class, Bonferroni) or
            ``"complement"`` (``p2 = 1 - p1``: one sequence, radius ``r`` a threshold
            on ``p1``); see :class:`~renyicert.sequential_rule.DecisionRule`.
        batch_size
            Noisy copies per model call (``None``: the ``Smoothed``'s own).  The
            answers do not depend on it, nor on ``inputs_at_once``.
        inputs_at_once
            Undecided inputs whose copies share the model's batches (default: all).
        seed, generator
            As in :meth:`certify`.
        decision_test
            The complement form's test (see :class:`~renyicert.sequential_rule.DecisionRule`):
            ``"ordered"`` (the default): one-sided e-processes per radius at the full
            ``alpha``, radii certified in increasing order; ``"two-sided"``: every radius
            from one two-sided confidence sequence (the rule before). The runner-up form
            uses its two-sided sequences either way.

        Examples
        --------
        >>> import torch, renyicert
        >>> model = torch.nn.Linear(1, 2)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.tensor([[1.0], [-1.0]])); _ = model.bias.zero_()
        >>> smoothed = renyicert.Smoothed(model, "gaussian", num_classes=2, scale=1.0, progress=False)
        >>> answer = smoothed.certify_at(torch.tensor([2.0]), [0.0, 1.0, 3.0], bound="tight", seed=0)
        >>> answer.label, answer.certified, answer.undecided, answer.samples < 2_000
        (0, (True, True, False), (False, False, False), True)
        """
        batch, single = self._as_batch(x)
        answers = self._sequential_answers(
            batch,
            radii,
            alpha,
            budget=budget,
            extended_budget=extended_budget,
            n0=n0,
            bound=bound,
            p2_mode=p2_mode,
            batch_size=batch_size,
            inputs_at_once=inputs_at_once,
            keys=noise_keys(batch.shape[0], seed, generator).tolist(),
            decision_test=decision_test,
        )
        results: list[Any] = [None] * batch.shape[0]
        with progress_bar(batch.shape[0], "certify at radii", "input", self.progress) as bar:
            for i, certificate in answers:
                results[i] = certificate
                if bar is not None:
                    bar.update(1)
        return results[0] if single else results

    def certify_at_stream(
        self,
        x: Any,
        radii: Any,
        alpha: float = 0.001,
        *,
        seeds: Sequence[int],
        budget: int = 100_000,
        extended_budget: int | None = None,
        n0: int = 100,
        bound: str = "renyi",
        p2_mode: str = "runner-up",
        batch_size: int | str | None = None,
        inputs_at_once: int | None = None,
        decision_test: str = "ordered",
    ) -> Iterator[tuple[int, SequentialCertificate]]:
        """:meth:`certify_at` on the batch ``x``, answered as each input is decided: ``(i, certificate)`` pairs, in the order they stop.

        Input ``i`` is certified with seed ``seeds[i]``, exactly as
        ``certify_at(x[i], ..., seed=seeds[i])`` certifies it alone, so a data set
        can be certified in slices, in any order, and each answer recorded as it
        comes (what :func:`renyicert.workflow.certify_dataset_at` does). The
        arguments are checked before this returns; the other parameters are
        :meth:`certify_at`'s.

        Examples
        --------
        >>> import torch, renyicert
        >>> model = torch.nn.Linear(1, 2)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.tensor([[1.0], [-1.0]])); _ = model.bias.zero_()
        >>> smoothed = renyicert.Smoothed(model, "gaussian", num_classes=2, scale=1.0, progress=False)
        >>> answers = dict(smoothed.certify_at_stream(torch.tensor([[2.0], [-2.0]]), [0.0, 1.0], seeds=[7, 3]))
        >>> answers[1] == smoothed.certify_at(torch.tensor([-2.0]), [0.0, 1.0], seed=3)
        True
        """
        batch, _ = self._as_batch(x)
        keys = [check_seed(seed, f"seeds[{i}]") for i, seed in enumerate(seeds)]
        if len(keys) != batch.shape[0]:
            raise ValueError(f"seeds must hold one seed per input of x ({batch.shape[0]}), got {len(keys)}")
        return self._sequential_answers(
            batch,
            radii,
            alpha,
            budget=budget,
            extended_budget=extended_budget,
            n0=n0,
            bound=bound,
            p2_mode=p2_mode,
            batch_size=batch_size,
            inputs_at_once=inputs_at_once,
            keys=keys,
            decision_test=decision_test,
        )

    def _sequential_answers(
        self,
        batch: Any,
        radii: Any,
        alpha: float,
        *,
        budget: int,
        extended_budget: int | None,
        n0: int,
        bound: str,
        p2_mode: str,
        batch_size: int | str | None,
        inputs_at_once: int | None,
        keys: list[int],
        decision_test: str,
    ) -> Iterator[tuple[int, SequentialCertificate]]:
        """The arguments checked, then the answers of :func:`renyicert.sequential.certify_stream` on the rows of ``batch``."""
        alpha = check_alpha(alpha)
        budget = check_positive_int(budget, "budget")
        extended_budget = check_extended_budget(extended_budget, budget)
        n0 = check_positive_int(n0, "n0")
        requested = self.batch_size if batch_size is None else check_batch_size(batch_size)
        rule = decision_rule(self.mechanism, radii, bound, p2_mode, alpha, self.num_classes, decision_test)
        at_once = batch.shape[0] if inputs_at_once is None else check_positive_int(inputs_at_once, "inputs_at_once")
        source = ((i, batch[i : i + 1], keys[i]) for i in range(batch.shape[0]))
        return certify_stream(
            self._engine,
            source,
            rule,
            budget=budget,
            extended_budget=extended_budget,
            n0=n0,
            batch_size=requested,
            inputs_at_once=at_once,
        )
