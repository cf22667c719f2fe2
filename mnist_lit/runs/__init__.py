"""What the commands share: the configured LightningCLI (:mod:`.lightning_cli`), one fit
into a folder of its own (:mod:`.fit`), one evaluation of a trained model on a split
(:mod:`.evaluation`), and the folders that record what was asked (:mod:`.records`)."""
