"""Which fits each network and loss needs next, decided by its own results alone: the
rounds of successive halving (:mod:`~mnist_lit.study.halving`), then one fit per seed at
the chosen rate. The pairs advance independently, so the fits of one wait for nothing
but that pair's round before, and the results are the same for any number of workers.
"""

from __future__ import annotations

from mnist_lit.runs.errors import MnistLitError
from mnist_lit.study import halving
from mnist_lit.study.folder import SeedFit, SeedResult, StudyFolder, TuningFit, TuningResult
from mnist_lit.study.plan import Network, Plan

StudyFit = TuningFit | SeedFit


class NetworkAndLoss:
    """One network and loss: its tuning fits and seeds, as far as they have gone."""

    def __init__(self, plan: Plan, network: Network, loss: str, folder: StudyFolder) -> None:
        self.network = network.name
        self.loss = loss
        self.grid = plan.rates(network)
        self.extensions = plan.budget.extensions
        self.round_epochs = halving.round_epochs(plan.budget.epochs[network.name])
        self.rounds = len(self.round_epochs)
        self.seeds = plan.budget.seeds
        tuning, tested = folder.read(network.name, loss)
        self.tuning = {(r.lr, r.round): r for r in tuning}
        self.tested = {r.seed: r for r in tested}

    def __str__(self) -> str:
        return f"{self.network}, {self.loss}"

    def _finished(self) -> dict[halving.RateRound, float | None]:
        return {key: result.value for key, result in self.tuning.items()}

    def tuning_fits(self) -> list[TuningFit]:
        """Every tuning fit that the results so far call for, in the order of the rounds."""
        wanted = halving.wanted(self.grid, self.rounds, self._finished(), self.extensions)
        return [TuningFit(self.network, self.loss, lr, k, self.round_epochs[k]) for lr, k in wanted]

    def rate(self) -> float | None:
        """The tuned rate, once every round has finished."""
        try:
            return halving.chosen(self.grid, self.rounds, self._finished(), self.extensions)
        except ValueError:
            raise MnistLitError(
                f"{self}: every finalist of the tuning diverged. Widen the search towards "
                "smaller rates."
            ) from None

    def best(self) -> TuningResult:
        """The last round's result of the tuned rate, once every round has finished."""
        rate = self.rate()
        assert rate is not None, f"{self}: the tuning goes on"
        return self.tuning[rate, self.rounds - 1]

    def to_run(self) -> list[StudyFit]:
        """The fits called for whose results are not written yet: the tuning's, and once it
        has chosen its rate, the seeds'."""
        rate = self.rate()
        if rate is None:
            return [f for f in self.tuning_fits() if (f.lr, f.round) not in self.tuning]
        seeds = [seed for seed in self.seeds if seed not in self.tested]
        return [SeedFit(self.network, self.loss, seed, rate) for seed in seeds]

    def keep(self, result: TuningResult | SeedResult) -> None:
        if isinstance(result, TuningResult):
            self.tuning[result.lr, result.round] = result
        else:
            self.tested[result.seed] = result

    def planned(self) -> list[tuple[int, bool]]:
        """Each fit, as its epochs and whether its result is written: the fits called for,
        the rounds to come at their sizes, and the seeds (each fit costs about its epochs)."""
        called = self.tuning_fits()
        sizes = halving.round_sizes(len(self.grid), self.rounds)
        later = range(1 + max(f.round for f in called), self.rounds)
        return [
            *((f.epochs, (f.lr, f.round) in self.tuning) for f in called),
            *((self.round_epochs[k], False) for k in later for _ in range(sizes[k])),
            *((self.round_epochs[-1], seed in self.tested) for seed in self.seeds),
        ]


class Control(NetworkAndLoss):
    """The negative control: ``original``'s loss trained again on the plan's control seeds
    (disjoint from the study's) at ``original``'s tuned rate, with no tuning of its own."""

    def __init__(
        self, plan: Plan, network: Network, original: NetworkAndLoss, folder: StudyFolder
    ) -> None:
        super().__init__(plan, network, plan.loss(f"{original.loss}_control").name, folder)
        self.original = original
        self.seeds = plan.control_seeds
        self.tuning = {}

    def tuning_fits(self) -> list[TuningFit]:
        return []

    def rate(self) -> float | None:
        return self.original.rate()

    def planned(self) -> list[tuple[int, bool]]:
        return [(self.round_epochs[-1], seed in self.tested) for seed in self.seeds]
