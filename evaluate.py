"""Score a predictions CSV: python evaluate.py predictions=FILE [data=NAME] [data.root=PATH]

The same entry point as the installed esa-evaluate command (esa_lightning/cli/evaluate.py), with the
package's configs (esa_lightning/conf).
"""

from esa_lightning.cli.evaluate import main

if __name__ == "__main__":
    main()
