"""Where the torch-based tools (Cellpose, Topaz) run: one choice shared by their adapters."""

from __future__ import annotations

import enum

from lipobench.errors import ToolUnavailableError

__all__ = ["Device", "resolve_torch_device"]


class Device(str, enum.Enum):
    """Where a tool runs: ``auto`` picks CUDA when torch sees a GPU, else the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


def resolve_torch_device(device: Device | str):
    """The ``torch.device`` for ``device``; CUDA asked for but absent is a ToolUnavailableError."""
    import torch

    device = Device(device)
    has_cuda = torch.cuda.is_available()
    if device is Device.CUDA and not has_cuda:
        raise ToolUnavailableError(
            "device 'cuda' was asked for but torch sees no GPU: use device 'auto' or 'cpu'"
        )
    if device is Device.CUDA or (device is Device.AUTO and has_cuda):
        return torch.device("cuda")
    return torch.device("cpu")
