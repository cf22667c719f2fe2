"""What the trackers are told of a data module's and a model's hyperparameters."""

from __future__ import annotations

from lightning.pytorch.utilities import AttributeDict


class TrackedHyperparameters:
    """A LightningModule's or LightningDataModule's hyperparameters as the trackers and
    ``hparams.yaml`` get them: those of the checkpoint without LightningCLI's
    ``_instantiator``, its record of how to rebuild the parts, which the checkpoint keeps
    (``load_from_checkpoint`` needs it) and a tracker has no use for."""

    @property
    def hparams_initial(self) -> AttributeDict:
        hparams: AttributeDict = super().hparams_initial  # type: ignore[misc]
        hparams.pop("_instantiator", None)
        return hparams
