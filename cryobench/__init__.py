"""cryobench: benchmarks and exact metrics for particle picking in cryo-electron tomograms.

Importing the package is cheap: heavy dependencies (torch, copick) load only in the modules
that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
