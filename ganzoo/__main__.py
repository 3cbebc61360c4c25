"""`python -m ganzoo` runs the CLI (also what `torchrun -m ganzoo` needs)."""

from ganzoo.cli import main

if __name__ == "__main__":
    main()
