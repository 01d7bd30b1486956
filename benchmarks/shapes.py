"""The canonical shapes: the attention of CLAVER's temporal blocks at the published model sizes,
``(B, H, T, L, D)`` with ``N = T * L`` tokens (L = 1 + patches: 197 for ViT-B/16 at 224 px, 50 for
ViT-B/32, 257 for ViT-L/14). The benchmarks time them; the GPU tests check them at B = 1."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    name: str
    B: int
    H: int
    T: int
    L: int
    D: int

    @property
    def N(self) -> int:
        return self.T * self.L

    def with_batch(self, b: int) -> Shape:
        return Shape(self.name, b, self.H, self.T, self.L, self.D)


SHAPES = {
    s.name: s
    for s in [
        Shape("b16-8f", 8, 12, 8, 197, 64),
        Shape("b16-16f", 8, 12, 16, 197, 64),
        Shape("b16-32f", 4, 12, 32, 197, 64),
        Shape("b32-8f", 8, 12, 8, 50, 64),
        Shape("l14-8f", 4, 16, 8, 257, 64),
    ]
}
