"""Building blocks written against :class:`estimators.ir.GraphBuilder`.

Every unit is conv -> BN -> activation so BN folds into the conv at export. A block's
tensors are named under the block's scope, which becomes the torch module path.
"""

from __future__ import annotations

from dataclasses import dataclass

from estimators.ir import GraphBuilder


@dataclass(frozen=True)
class Feature:
    """A backbone output a head can attach to."""

    tensor: int
    channels: int
    stride: int


def conv_bn(b: GraphBuilder, x: int, out: int, kernel: int, stride: int = 1, groups: int = 1,
            act: str | None = "relu", name: str = "conv", padding: int | None = None) -> int:
    with b.scope(name):
        y = b.conv(x, out, kernel, stride, padding=padding, groups=groups)
        y = b.bn(y)
        return b.act(y, act) if act else y


def dw_bn(b: GraphBuilder, x: int, kernel: int, stride: int = 1, act: str | None = "relu",
          name: str = "dw") -> int:
    c = b.channels(x)
    return conv_bn(b, x, c, kernel, stride, groups=c, act=act, name=name)


def separable(b: GraphBuilder, x: int, out: int, kernel: int = 3, stride: int = 1,
              name: str = "sep") -> int:
    """Depthwise kxk (bias) -> BN -> ReLU -> pointwise 1x1 (bias), no activation after."""
    with b.scope(name):
        y = b.dwconv(x, kernel, stride, bias=True, name="dw")
        y = b.act(b.bn(y))
        return b.conv(y, out, 1, bias=True, name="pw")


def _lb_body(b: GraphBuilder, x: int, out: int, stride: int, kernel: int) -> int:
    """Linear depthwise (no activation), then pointwise + ReLU."""
    t = dw_bn(b, x, kernel, stride, act=None, name="dw1")
    return conv_bn(b, t, out, 1, name="pw")


def lb_block(b: GraphBuilder, x: int, out: int, stride: int, kernel: int, name: str) -> int:
    """EtinyNet linear depthwise block: dw (linear) -> pw + ReLU -> dw + ReLU, no residual."""
    with b.scope(name):
        t = _lb_body(b, x, out, stride, kernel)
        return dw_bn(b, t, kernel, name="dw2")


def dlb_block(b: GraphBuilder, x: int, out: int, stride: int, kernel: int, name: str,
              long_skip: bool = False) -> int:
    """Dense LB: t = pw(...) (+ x when shapes match); out = dw2(t) + t (+ x or P(x))."""
    with b.scope(name):
        t = _lb_body(b, x, out, stride, kernel)
        same = stride == 1 and b.channels(x) == out
        if same:
            t = b.add(t, x, name="dense")
        y = b.add(dw_bn(b, t, kernel, name="dw2"), t, name="sum")
        if long_skip:
            skip = x if same else _projection(b, x, out, stride)
            y = b.add(y, skip, name="skip")
        return y


def _projection(b: GraphBuilder, x: int, out: int, stride: int) -> int:
    """Seed's shortcut: depthwise 1x1 stride s (bias) -> BN -> ReLU -> pointwise 1x1 (bias)."""
    with b.scope("proj"):
        y = b.dwconv(x, 1, stride, bias=True, name="dw")
        y = b.act(b.bn(y))
        return b.conv(y, out, 1, bias=True, name="pw")


def etinynet_block(b: GraphBuilder, x: int, kind: str, out: int, stride: int, kernel: int,
                   name: str) -> int:
    if kind == "lb":
        return lb_block(b, x, out, stride, kernel, name)
    return dlb_block(b, x, out, stride, kernel, name, long_skip=kind == "dlb_skip")
