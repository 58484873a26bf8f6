"""The SSD multibox loss with hard-negative mining."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossParts:
    total: torch.Tensor
    boxes: torch.Tensor  # smooth-L1 over positives, / positives
    classes: torch.Tensor  # cross-entropy over positives and mined negatives, / positives
    num_positives: int


def multibox_loss(pred_boxes: torch.Tensor, logits: torch.Tensor, target_boxes: torch.Tensor,
                  target_classes: torch.Tensor, neg_pos_ratio: int = 3) -> LossParts:
    """``pred_boxes`` (N, P, 4), ``logits`` (N, P, C + 1), targets from
    :func:`objectives.matching.match` stacked: (N, P, 4) and (N, P).

    Per image, the negatives with the highest background loss are kept, ``neg_pos_ratio`` per
    positive (at most all negatives); an image without positives contributes no negatives.
    Both sums are divided by the batch's number of positives (at least 1).
    """
    positive = target_classes > 0
    num_pos = positive.sum(dim=1, keepdim=True)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target_classes.reshape(-1),
                         reduction="none").view_as(target_classes)
    with torch.no_grad():
        # Rank negatives by their loss; positives are pushed to the bottom.
        mining = ce.masked_fill(positive, float("-inf"))
        order = torch.sort(mining, dim=1, descending=True, stable=True).indices
        rank = order.argsort(dim=1)
        num_neg = torch.clamp(neg_pos_ratio * num_pos, max=positive.shape[1] - num_pos)
        negative = rank < num_neg
    selected = positive | negative
    total_pos = max(int(num_pos.sum()), 1)
    class_loss = ce[selected].sum() / total_pos
    box_loss = F.smooth_l1_loss(pred_boxes[positive], target_boxes[positive],
                                reduction="sum") / total_pos
    return LossParts(class_loss + box_loss, box_loss, class_loss, int(num_pos.sum()))
