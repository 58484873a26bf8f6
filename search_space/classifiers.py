"""Classification networks of the published device runs, rebuilt on the project's layer graph.

They exist so that latency and memory models can be fitted on real board measurements of real
int8 models (``estimators/data/published_device_runs.csv``): each network here lowers to the same
IR a searched detector does. The graph output is the logits, shape (1, classes); softmax is left
to the caller as in the detectors.

Two classifier tops occur in the references, with identical parameter and MAC counts:

* Keras-applications MobileNet (ImageNet): global average pool -> 1x1 conv with bias
  (``conv_preds``) -> reshape to (1, classes). Dropout is a no-op at inference.
* Dense top (Keras MobileNetV2, ST model zoo transfer-learning heads, MLPerf Tiny references):
  global average pool -> flatten -> fully connected with bias. The MLPerf references write the
  pool as an ``AveragePooling2D`` over the whole map, which is the same operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from estimators.ir import GraphBuilder
from search_space.backbones import mobilenet_v1, mobilenet_v2, resnet8
from search_space.layers import Feature
from search_space.model import CLASSIFICATION, Architecture

Top = Literal["conv", "dense"]
Backbone = Callable[[GraphBuilder, int], list[Feature]]


def conv_top(b: GraphBuilder, x: int, classes: int) -> int:
    """Keras MobileNet's ImageNet top: GAP -> 1x1 conv (bias) -> (1, classes)."""
    with b.scope("classifier"):
        y = b.conv(b.gap(x), classes, 1, bias=True, name="conv_preds")
        return b.reshape(y, (b.shape(y)[0], classes))


def dense_top(b: GraphBuilder, x: int, classes: int) -> int:
    """GAP -> flatten -> fully connected (bias)."""
    with b.scope("classifier"):
        return b.linear(b.flatten(b.gap(x)), classes, name="fc")


def classifier_architecture(name: str, input_shape: tuple[int, int, int], backbone: Backbone,
                            num_classes: int, top: Top = "dense") -> Architecture:
    """Lower ``backbone`` (its last feature) + a classifier top to a classification graph."""
    if num_classes < 2:
        raise ValueError(f"{name}: a classifier needs at least 2 classes, got {num_classes}")
    b = GraphBuilder()
    x = b.input((1, *input_shape))
    features = backbone(b, x)
    head = conv_top if top == "conv" else dense_top
    logits = head(b, features[-1].tensor, num_classes)
    return Architecture(name, CLASSIFICATION, b.finish((logits,)), num_classes)


def mobilenet_v1_classifier(name: str, alpha: float, size: int, channels: int, num_classes: int,
                            top: Top = "conv", act: str = "relu6") -> Architecture:
    """MobileNet v1 (Keras layout) at ``size`` x ``size`` x ``channels``."""
    return classifier_architecture(name, (channels, size, size),
                                   lambda b, x: mobilenet_v1(b, x, alpha, act=act),
                                   num_classes, top)


def mobilenet_v2_classifier(name: str, alpha: float, size: int, channels: int, num_classes: int
                            ) -> Architecture:
    """Keras MobileNetV2 (last conv 1280 wide for alpha <= 1) with a dense top."""
    return classifier_architecture(name, (channels, size, size),
                                   lambda b, x: mobilenet_v2(b, x, alpha), num_classes, "dense")


def resnet8_classifier(name: str, num_classes: int = 10, filters: int = 16) -> Architecture:
    """MLPerf Tiny image-classification reference: ResNet-8 on 32x32x3 CIFAR-10 images.

    The v1.0 reference uses 16 base filters (about 78k parameters); later revisions of the
    training script default to 26, which is not the model of the published runs.
    """
    return classifier_architecture(name, (3, 32, 32), lambda b, x: resnet8(b, x, filters),
                                   num_classes, "dense")
