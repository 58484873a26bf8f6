from __future__ import annotations

import math

import numpy as np
import torch

from objectives.augment import resize
from objectives.data import open_dataset
from objectives.loss import multibox_loss
from objectives.matching import match
from objectives.train import Recipe, make_optimizer
from search_space.detection import normalise


def test_three_negatives_per_positive_are_mined():
    n, p, c = 2, 20, 3
    logits = torch.zeros(n, p, c + 1)
    # Image 0: 2 positives; image 1: none. Negatives of image 0 get rising background loss, so
    # the mined ones are known: the 6 with the lowest background logit.
    target = torch.zeros(n, p, dtype=torch.long)
    target[0, :2] = torch.tensor([1, 3])
    logits[0, :, 0] = -torch.arange(p, dtype=torch.float32) / 10
    parts = multibox_loss(torch.zeros(n, p, 4), logits, torch.zeros(n, p, 4), target)
    ce = torch.nn.functional.cross_entropy(logits[0], target[0], reduction="none")
    expected = (ce[:2].sum() + ce[-6:].sum()) / 2  # positives + 3 x 2 hardest negatives
    assert parts.num_positives == 2
    assert torch.isclose(parts.classes, expected)
    assert parts.boxes.item() == 0.0


def test_box_loss_is_smooth_l1_over_positives_per_positive():
    target_classes = torch.tensor([[1, 0, 2, 0]])
    target = torch.zeros(1, 4, 4)
    pred = torch.zeros(1, 4, 4)
    pred[0, 0, 0] = 0.5  # smooth L1: 0.5 * 0.5^2 = 0.125
    pred[0, 2, 1] = 3.0  # 3 - 0.5 = 2.5
    pred[0, 1, :] = 9.0  # a negative: no box loss
    parts = multibox_loss(pred, torch.zeros(1, 4, 3), target, target_classes)
    assert math.isclose(parts.boxes.item(), (0.125 + 2.5) / 2, rel_tol=1e-6)


def test_loss_decreases_over_a_few_steps_on_a_tiny_batch(demo_dir, tiny_spec):
    torch.manual_seed(0)
    net = tiny_spec.build()
    dataset = open_dataset(demo_dir, "train")
    size, priors = net.arch.input_size, net.priors.numpy()
    samples = [resize(dataset.sample(i), size) for i in range(4)]
    images = torch.from_numpy(np.ascontiguousarray(normalise(np.stack([s.image for s in
                                                                       samples]))))
    targets = [match(s.boxes, s.labels, priors) for s in samples]
    boxes = torch.from_numpy(np.stack([t[0] for t in targets]))
    classes = torch.from_numpy(np.stack([t[1] for t in targets]))
    optimizer = make_optimizer(net, Recipe(lr=3e-3))
    losses = []
    net.train()
    for _ in range(12):
        parts = multibox_loss(*net(images), boxes, classes)
        optimizer.zero_grad()
        parts.total.backward()
        optimizer.step()
        losses.append(parts.total.item())
    assert losses[-1] < 0.6 * losses[0], losses
