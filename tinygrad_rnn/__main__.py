"""`python -m tinygrad_rnn`: the same program as the `tinygrad-rnn` console script (see cli/__init__.py)."""

from tinygrad_rnn.cli import entry_point

if __name__ == "__main__":
    entry_point()
