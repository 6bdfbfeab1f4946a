"""Built-in training-data augmentations (config ``augmentation``; the contract: :mod:`asdbench.api.augmentation`)."""
