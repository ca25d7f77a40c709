"""``python -m esa_lightning.data.synthetic --out DIR ...``: the synthetic mission generator's
command line, kept at its documented place (the generator is ``data.readers.synthetic``)."""

from esa_lightning.data.readers.synthetic import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
