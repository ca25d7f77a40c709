"""Merge detectors trained apart: python merge.py detectors=[PATH,PATH,...] [data=NAME]

The same entry point as the installed esa-merge command (esa_lightning/cli/merge.py), with the
package's configs (esa_lightning/conf).
"""

from esa_lightning.cli.merge import main

if __name__ == "__main__":
    main()
