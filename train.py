"""Train a detector: python train.py [experiment=NAME] [data=NAME] [key=value ...]

The same entry point as the installed esa-train command (esa_lightning/cli/train.py), with the
package's configs (esa_lightning/conf).
"""

from esa_lightning.cli.train import main

if __name__ == "__main__":
    main()
