"""`python -m ticketfmt ...` is the `ticket` command (also under torchrun)."""

from ticketfmt.cli import main

if __name__ == "__main__":
    main()
