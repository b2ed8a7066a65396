"""A short PyTorch training script, written only with PyTorch's spellings, runs end to end (issue 12).

The script below is what a PyTorch user types without thinking: `nn.Module`
with `super().__init__()`, `nn.Embedding`, a bidirectional two-layer `nn.GRU`
with `dropout=` and `batch_first=True`, `nn.Sequential` with `ReLU` and
`Dropout`, `nn.CrossEntropyLoss`, `optim.AdamW`, `lr_scheduler.StepLR`,
`clip_grad_norm_`, `view`, `argmax(dim=)`, `torch.cat(..., dim=)`,
`randint`, `manual_seed`, `train()`/`eval()` and `no_grad()`. Only the import
line differs. The task (repeat the previous token) is learnable in a few
seconds, so the test can also check that training worked.
"""

from __future__ import annotations

from typing import Any

import tinygrad_rnn as torch  # the one line a PyTorch user changes

nn, optim = torch.nn, torch.optim


class Tagger(nn.Module):
    """At each position, predict the token seen one step earlier."""

    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.rnn = nn.GRU(8, hidden, num_layers=2, dropout=0.1, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, vocab))

    def forward(self, tokens: Any) -> Any:
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out)


def batch(size: int, steps: int = 12, vocab: int = 6) -> tuple[Any, Any]:
    tokens = torch.randint(0, vocab, (size, steps))
    target = torch.cat([torch.zeros(size, 1, dtype=tokens.dtype), tokens[:, :-1]], dim=1)
    return tokens, target


def test_a_pytorch_style_training_script_runs_and_learns() -> None:
    torch.manual_seed(0)
    model = Tagger(vocab=6, hidden=16)
    optimizer = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)
    criterion = nn.CrossEntropyLoss()
    losses = []
    for _ in range(150):
        model.train()
        tokens, target = batch(16)
        loss = criterion(model(tokens).view(-1, 6), target.view(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())

    model.eval()
    with torch.no_grad():
        tokens, target = batch(64)
        accuracy = (model(tokens).argmax(dim=-1) == target).float().mean().item()
    assert scheduler.get_last_lr() == [5e-3]  # halved once, after step 100
    assert sum(losses[-10:]) / 10 < losses[0] / 10  # ln 6 = 1.79 at the start
    assert accuracy > 0.95  # chance is 1/6
