"""torch.distributed helpers shared by evaluation and training.

A process started by ``torchrun`` (RANK / WORLD_SIZE / LOCAL_RANK in its environment) joins the process group
with NCCL when CUDA is available and gloo otherwise; a plain ``python`` process is a world of one and every
helper here works without a process group. Only rank 0 writes files and logs (:func:`rank_zero_only`).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None when no process group was started

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment names this process's place in a torchrun world."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def init_distributed(backend: str | None = None, timeout_s: float = 1800.0) -> DistInfo:
    """Join the torchrun process group (once); a world of one without torchrun.

    ``backend``: None picks ``nccl`` when CUDA is available, else ``gloo``. With NCCL the process's CUDA device is
    set to LOCAL_RANK. Calling it again returns the current state.
    """
    if dist.is_available() and dist.is_initialized():
        return info()
    if not launched_by_torchrun():
        return DistInfo()
    local_rank = int(os.environ["LOCAL_RANK"])
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return info()


def info() -> DistInfo:
    """This process's rank, world size, local rank and backend."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
            backend=str(dist.get_backend()),
        )
    return DistInfo()


def get_rank() -> int:
    return info().rank


def get_world_size() -> int:
    return info().world_size


def is_main_process() -> bool:
    return info().is_main


def rank_zero_only(fn: Callable[..., T]) -> Callable[..., T | None]:
    """Decorator: run ``fn`` on rank 0 only; other ranks get None."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs) if is_main_process() else None

    return wrapper


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's (picklable) ``obj``, in rank order, on every rank; ``[obj]`` without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean of each float over all ranks (every rank must call it); unchanged without a process group."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    return {k: v / dist.get_world_size() for k, v in zip(keys, packed.tolist())}


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s (picklable) ``obj`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def owns(index: int, where: DistInfo | None = None) -> bool:
    """Whether item ``index`` of an ordered stream belongs to this rank: round-robin, so every item goes to
    exactly one rank (no padding, unlike DistributedSampler, which repeats items to even out the ranks)."""
    where = where or info()
    return index % where.world_size == where.rank


def teardown() -> None:
    """Leave the process group cleanly: collect garbage, wait for every rank, then destroy the group.

    torchrun + gloo can abort at exit ("terminate called without an active exception") when a rank tears down
    while another still holds communication buffers; callers should drop their models / optimizers first.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


@contextlib.contextmanager
def distributed(backend: str | None = None) -> Iterator[DistInfo]:
    """``with distributed() as d:`` joins the torchrun process group (if any) and tears it down on the way out."""
    started = not (dist.is_available() and dist.is_initialized())
    d = init_distributed(backend)
    try:
        yield d
    except BaseException:
        # no barrier on the way out of an error: the other ranks may never reach it (torchrun stops them)
        if started and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        raise
    if started:
        teardown()


def run_key() -> str:
    """A name for this run's folder that every rank of one torchrun launch agrees on.

    Under torchrun: ``torchrun-<TORCHELASTIC_RUN_ID>`` (``--standalone`` and ``--rdzv-id`` make it unique);
    when the id is torchrun's default "none", or without torchrun, the launch time to the second.
    """
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if launched_by_torchrun() and run_id != "none":
        return f"torchrun-{run_id}"
    return time.strftime("%Y-%m-%d_%H-%M-%S")


def register_resolvers() -> None:
    """OmegaConf resolvers for Hydra run folders: ``${chrono.run_key:}`` (see :func:`run_key`) and
    ``${chrono.rank_zero:value}`` (``value`` on rank 0, null elsewhere; e.g. for ``hydra.output_subdir``)."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("chrono.run_key", run_key, use_cache=True, replace=True)
    OmegaConf.register_new_resolver(
        "chrono.rank_zero", lambda value: value if int(os.environ.get("RANK", 0)) == 0 else None, replace=True
    )


def resolve_device(device: str) -> str:
    """``auto`` -> this rank's CUDA device when there is one, else ``cpu``; any other name as it is."""
    if device != "auto":
        return device
    import torch

    return f"cuda:{info().local_rank}" if torch.cuda.is_available() else "cpu"


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank (every rank gets the same answer; a plain bool in a world of one)."""
    import torch
    import torch.distributed as tdist

    if not (tdist.is_available() and tdist.is_initialized()) or tdist.get_world_size() == 1:
        return bool(flag)
    value = torch.tensor([1.0 if flag else 0.0],
                         device="cuda" if tdist.get_backend() == "nccl" else "cpu")
    tdist.all_reduce(value, op=tdist.ReduceOp.MAX)
    return bool(value.item() > 0)
