"""The shared training loop's optimizer: fused AdamW does what the reference AdamW does."""

from __future__ import annotations

import copy

import torch

from compress.training.loop import TrainingConfig, make_optimizer


def test_fused_adamw_matches_the_reference_update_and_skips_frozen_parameters():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 2))
    model[0].weight.requires_grad_(False)
    reference = copy.deepcopy(model)
    initial = model[1].weight.detach().clone()
    config = TrainingConfig(learning_rate=1e-2, weight_decay=0.01)
    optimizer = make_optimizer(model, config)
    assert optimizer.defaults.get("fused") is True
    assert all(p.requires_grad for group in optimizer.param_groups for p in group["params"])
    expected = torch.optim.AdamW(
        [p for p in reference.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.01, foreach=False
    )
    ids = torch.randint(0, 50, (4, 5))
    for net, opt in ((model, optimizer), (reference, expected)):
        for _ in range(3):
            opt.zero_grad()
            net(ids).mean(1).pow(2).sum().backward()
            opt.step()
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert (model[1].weight - initial).abs().max() > 1e-3
    torch.manual_seed(0)
    untouched = torch.nn.Embedding(50, 8).weight
    torch.testing.assert_close(model[0].weight, untouched)


def test_autocast_follows_the_resolved_precision():
    from compress.training import loop as training

    assert training.resolve_precision("bf16") == "bf16"  # `auto`: tests/test_precision.py
    with training.autocast("bf16"):
        assert torch.nn.Linear(4, 4)(torch.ones(1, 4)).dtype == torch.bfloat16
    with training.autocast("fp32"):
        assert torch.nn.Linear(4, 4)(torch.ones(1, 4)).dtype == torch.float32
