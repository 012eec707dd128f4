"""The reference optimisation: AdamW + OneCycleLR (which also cycles AdamW's beta1 0.95 <-> 0.85)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from chrono.errors import ConfigError


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: Mapping[str, Any], total_steps: int):
    """(AdamW, OneCycleLR) from the ``optim`` config group; the scheduler steps once per optimizer step.

    ``cfg`` (conf/optim/*.yaml, every key required): lr, weight_decay, betas, pct_start, div_factor,
    final_div_factor, base_momentum, max_momentum (OneCycleLR's names; the momentum is AdamW's beta1),
    cycle_momentum, anneal_strategy (grad_clip is the trainer's).
    """
    params = list(params)
    if not params:
        raise ConfigError("nothing to train: every parameter is frozen (backbone.freeze=true and adapter=none?)")
    optimizer = torch.optim.AdamW(
        params, lr=cfg["lr"], weight_decay=cfg["weight_decay"], betas=tuple(cfg["betas"])
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=cfg["lr"],
        total_steps=max(int(total_steps), 2),
        pct_start=cfg["pct_start"],
        anneal_strategy=cfg["anneal_strategy"],
        div_factor=cfg["div_factor"],
        final_div_factor=cfg["final_div_factor"],
        base_momentum=cfg["base_momentum"],
        max_momentum=cfg["max_momentum"],
        cycle_momentum=cfg["cycle_momentum"],
    )
    return optimizer, scheduler
