"""Score new telemetry: python predict.py ckpt=PATH [data=NAME] [data.root=PATH]

The same entry point as the installed esa-predict command (esa_lightning/cli/predict.py), with the
package's configs (esa_lightning/conf).
"""

from esa_lightning.cli.predict import main

if __name__ == "__main__":
    main()
