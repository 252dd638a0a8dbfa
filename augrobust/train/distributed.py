"""Process-group setup from torchrun's environment; a no-op single process otherwise."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Distributed"]


class Distributed:
    """The data-parallel context of this process: rank, world size, device; gloo on CPU, nccl on CUDA.

    Example:
        >>> env = Distributed("cpu")  # outside torchrun: one process
        >>> env.rank, env.world_size, env.active, env.gather("x")
        (0, 1, False, ['x'])
    """

    def __init__(self, device: str | torch.device) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(device)
        self.owns_group = False
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", local_rank if self.world_size > 1 else torch.cuda.current_device())
        if self.world_size > 1:
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
                self.owns_group = True

    @property
    def active(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def all_reduce_min(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise minimum over the ranks (in place; the tensor itself in one process)."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return tensor

    def all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise maximum over the ranks (in place; the tensor itself in one process)."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()
