"""The reference optimisation: AdamW + OneCycleLR (which also cycles AdamW's beta1 0.95 <-> 0.85)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: Mapping[str, Any], total_steps: int):
    """(AdamW, OneCycleLR) from the ``optim`` config group; the scheduler steps once per optimizer step.

    ``cfg``: lr, weight_decay, betas, pct_start, div_factor, final_div_factor, base_momentum,
    max_momentum (OneCycleLR's names; the momentum is AdamW's beta1), anneal_strategy.
    """
    params = list(params)
    if not params:
        raise ValueError("nothing to train: every parameter is frozen (backbone.freeze=true and adapter=none?)")
    optimizer = torch.optim.AdamW(
        params, lr=cfg["lr"], weight_decay=cfg["weight_decay"], betas=tuple(cfg.get("betas", (0.9, 0.999)))
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=cfg["lr"],
        total_steps=max(int(total_steps), 2),
        pct_start=cfg.get("pct_start", 0.3),
        anneal_strategy=cfg.get("anneal_strategy", "cos"),
        div_factor=cfg.get("div_factor", 25.0),
        final_div_factor=cfg.get("final_div_factor", 1e4),
        base_momentum=cfg.get("base_momentum", 0.85),
        max_momentum=cfg.get("max_momentum", 0.95),
        cycle_momentum=cfg.get("cycle_momentum", True),
    )
    return optimizer, scheduler
