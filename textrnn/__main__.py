"""``python -m textrnn ...`` (and ``torchrun -m textrnn ...``)."""

from .cli import run

if __name__ == "__main__":
    run()
