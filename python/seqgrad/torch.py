"""seqgrad's PyTorch reference (the module ``seqgrad_torch``, installed beside this package):
``seqgrad.torch.from_files(model_json, weights)`` builds the ``torch.nn.Module`` of a seqgrad
model with the same parameter names. Only this module imports PyTorch (install it with
``pip install "./python[torch]"``)."""

from seqgrad_torch import *  # noqa: F401,F403
from seqgrad_torch import from_files, one_hot, save_weights  # noqa: F401
