"""Which fits each network and loss needs next, decided by its own results alone: the
rounds of successive halving (:mod:`~mnist_lit.study.halving`), then one fit per seed at
the chosen rate. The pairs advance independently, so the fits of one wait for nothing
but that pair's round before, and the results are the same for any number of workers.
"""

from __future__ import annotations

from mnist_lit.errors import MnistLitError
from mnist_lit.study import halving
from mnist_lit.study.folder import SeedFit, SeedResult, StudyFolder, TuningFit, TuningResult
from mnist_lit.study.plan import Network, Plan

StudyFit = TuningFit | SeedFit


class NetworkAndLoss:
    """One network and loss: its tuning fits and seeds, as far as they have gone."""

    def __init__(self, plan: Plan, network: Network, loss: str, folder: StudyFolder) -> None:
        self.network = network
        self.loss = loss
        self.grid = plan.rates(network)
        self.extensions = plan.budget.extensions
        self.round_epochs = halving.round_epochs(plan.budget.epochs[network.name])
        self.seeds = plan.budget.seeds
        self.tuning = {(r.lr, r.round): r for r in folder.read_tuning(network.name, loss)}
        self.tested = {r.seed: r for r in folder.read_seeds(network.name, loss)}

    def __str__(self) -> str:
        return f"{self.network.name}, {self.loss}"

    def _finished(self) -> dict[halving.RateRound, float | None]:
        return {key: result.value for key, result in self.tuning.items()}

    def tuning_fits(self) -> list[TuningFit]:
        """Every tuning fit that the results so far call for, in the order of the rounds."""
        wanted = halving.wanted(
            self.grid, len(self.round_epochs), self._finished(), self.extensions
        )
        return [
            TuningFit(self.network.name, self.loss, lr, k, self.round_epochs[k]) for lr, k in wanted
        ]

    def rate(self) -> float | None:
        """The tuned rate, once every round has finished."""
        try:
            return halving.chosen(
                self.grid, len(self.round_epochs), self._finished(), self.extensions
            )
        except ValueError:
            raise MnistLitError(
                f"{self}: every finalist of the tuning diverged. Widen the search towards "
                "smaller rates."
            ) from None

    def best_fit(self) -> TuningFit:
        """The last round's fit of the tuned rate."""
        rate, last = self.rate(), len(self.round_epochs) - 1
        return next(f for f in self.tuning_fits() if (f.lr, f.round) == (rate, last))

    def seed_fits(self) -> list[SeedFit]:
        rate = self.rate()
        if rate is None:
            return []
        full = self.round_epochs[-1]
        return [SeedFit(self.network.name, self.loss, rate, s, full) for s in self.seeds]

    def to_run(self) -> list[StudyFit]:
        """The fits called for whose results are not written yet."""
        tuning = [f for f in self.tuning_fits() if (f.lr, f.round) not in self.tuning]
        return [*tuning, *(f for f in self.seed_fits() if f.seed not in self.tested)]

    def keep(self, result: TuningResult | SeedResult) -> None:
        if isinstance(result, TuningResult):
            self.tuning[result.lr, result.round] = result
        else:
            self.tested[result.seed] = result

    def done(self) -> bool:
        return self.rate() is not None and set(self.seeds) <= set(self.tested)

    def epochs(self) -> tuple[int, int]:
        """Epochs trained by the fits written so far, and in all: the fits called for, the
        rounds to come at their sizes, and the seeds (each fit costs about its epochs)."""
        called = self.tuning_fits()
        done = sum(f.epochs for f in called if (f.lr, f.round) in self.tuning)
        rounds = len(self.round_epochs)
        sizes = halving.round_sizes(len(self.grid), rounds)
        later = range(1 + max(f.round for f in called), rounds)
        total = sum(f.epochs for f in called) + sum(sizes[k] * self.round_epochs[k] for k in later)
        full = self.round_epochs[-1]
        return done + full * len(self.tested), total + full * len(self.seeds)

    def fits(self) -> tuple[int, int]:
        """Fits written so far, and in all (the rounds to come at their sizes)."""
        called = self.tuning_fits()
        sizes = halving.round_sizes(len(self.grid), len(self.round_epochs))
        later = sum(sizes[1 + max(f.round for f in called) :])
        done = sum((f.lr, f.round) in self.tuning for f in called) + len(self.tested)
        return done, len(called) + later + len(self.seeds)
