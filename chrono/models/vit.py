"""A DINOv2-compatible Vision Transformer whose parameter names and shapes equal the hub models'.

``dinov2_vit{s,b,l,g}14[_reg4]_pretrain.pth`` load into it strictly. Size presets are few-line
factories in :data:`BACKBONES`; ``tiny`` is ours, for CPU tests and CPU training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from chrono.layers.block import Block
from chrono.layers.patch_embed import PatchEmbed


@dataclass(frozen=True)
class ViTConfig:
    """Architecture of a DINOv2 ViT. ``img_size`` only sets the stored position-embedding grid."""

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int = 14
    img_size: int = 518
    mlp_ratio: float = 4.0
    ffn: str = "mlp"  # "mlp" (ViT-S/B/L) or "swiglu" (ViT-g)
    num_register_tokens: int = 0
    layerscale_init: float = 1.0  # the hub's init_values; pretrained weights overwrite it
    interpolate_offset: float = 0.1
    interpolate_antialias: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def stride(self) -> int:
        """Input pixels per token (the patch size)."""
        return self.patch_size


BACKBONES: dict[str, ViTConfig] = {
    "tiny": ViTConfig(embed_dim=192, depth=3, num_heads=3),
    "vits": ViTConfig(embed_dim=384, depth=12, num_heads=6),
    "vitb": ViTConfig(embed_dim=768, depth=12, num_heads=12),
    "vitl": ViTConfig(embed_dim=1024, depth=24, num_heads=16),
    "vitg": ViTConfig(embed_dim=1536, depth=40, num_heads=24, ffn="swiglu"),
}


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT. Tokens are [cls, registers..., patches (raster order)], each of width embed_dim.

    The tracker drives the blocks itself (see ``ChronoTracker.extract_features``); this class provides
    token preparation, the blocks and the final norm with DINOv2's names.
    """

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.embed_dim
        self.patch_size = cfg.patch_size
        self.num_register_tokens = cfg.num_register_tokens
        self.patch_embed = PatchEmbed(cfg.patch_size, dim)
        num_patches = (cfg.img_size // cfg.patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.register_tokens = (
            nn.Parameter(torch.zeros(1, cfg.num_register_tokens, dim)) if cfg.num_register_tokens else None
        )
        self.blocks = nn.ModuleList(
            Block(dim, cfg.num_heads, cfg.mlp_ratio, cfg.ffn, cfg.layerscale_init) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        # DINOv2's masked-image-modelling token: never used for tracking, kept for strict loading; frozen so
        # that DDP does not wait for a gradient it will never get.
        self.mask_token = nn.Parameter(torch.zeros(1, dim), requires_grad=False)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens: cls and registers."""
        return 1 + self.num_register_tokens

    def interpolate_pos_encoding(self, num_patches: int, height: int, width: int) -> torch.Tensor:
        """Position embeddings [1, 1 + num_patches, dim] for an image of ``height`` x ``width`` pixels.

        Exactly DINOv2's: bicubic, antialias off, with the historical ``interpolate_offset`` passed as a
        scale factor (M + offset) / M, computed in float32.
        """
        stored = self.pos_embed.shape[1] - 1
        if num_patches == stored and height == width:
            return self.pos_embed
        pos_embed = self.pos_embed.float()
        cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]
        dim = pos_embed.shape[-1]
        gh, gw = height // self.patch_size, width // self.patch_size
        m = int(math.sqrt(stored))
        if self.cfg.interpolate_offset:
            kwargs = {"scale_factor": ((gh + self.cfg.interpolate_offset) / m, (gw + self.cfg.interpolate_offset) / m)}
        else:
            kwargs = {"size": (gh, gw)}
        patch_pos = F.interpolate(
            patch_pos.reshape(1, m, m, dim).permute(0, 3, 1, 2),
            mode="bicubic",
            antialias=self.cfg.interpolate_antialias,
            **kwargs,
        )
        if patch_pos.shape[-2:] != (gh, gw):
            raise RuntimeError(f"position embedding interpolation gave {tuple(patch_pos.shape[-2:])}, wanted {(gh, gw)}")
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, gh * gw, dim)
        return torch.cat((cls_pos, patch_pos), dim=1).to(self.pos_embed.dtype)

    def prepare_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] normalised images -> [N, prefix + (H/p)(W/p), dim] tokens before block 0."""
        height, width = images.shape[-2:]
        x = self.patch_embed(images)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(x.shape[1] - 1, height, width).to(x.dtype)
        if self.register_tokens is not None:
            x = torch.cat((x[:, :1], self.register_tokens.expand(x.shape[0], -1, -1), x[:, 1:]), dim=1)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] -> normalised patch tokens [N, (H/p)(W/p), dim] of the last block (no adapters)."""
        x = self.prepare_tokens(images)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, self.num_prefix_tokens :]


def dinov2_state_dict_config(state_dict: dict[str, torch.Tensor]) -> ViTConfig:
    """Infer a :class:`ViTConfig` from DINOv2 tensors (keys without prefix).

    embed_dim from cls_token, depth from the block count, heads = embed_dim / 64 (the DINOv2 rule),
    patch size from patch_embed, the stored grid from pos_embed, registers from register_tokens, the
    feed-forward kind and ratio from the first block.
    """
    dim = state_dict["cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    patch = state_dict["patch_embed.proj.weight"].shape[-1]
    grid = math.isqrt(state_dict["pos_embed"].shape[1] - 1)
    registers = state_dict["register_tokens"].shape[1] if "register_tokens" in state_dict else 0
    if "blocks.0.mlp.w12.weight" in state_dict:
        ffn, mlp_ratio = "swiglu", 4.0
    else:
        ffn, mlp_ratio = "mlp", state_dict["blocks.0.mlp.fc1.weight"].shape[0] / dim
    return ViTConfig(
        embed_dim=dim, depth=depth, num_heads=max(1, dim // 64), patch_size=patch, img_size=grid * patch,
        mlp_ratio=mlp_ratio, ffn=ffn, num_register_tokens=registers,
    )
