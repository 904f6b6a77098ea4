"""audiofp: audio fingerprinting for tracing the reuse of sounds.

The package is layered so that data flows one way::

    bytes -> Audio -> Spectrogram -> Peaks -> Fingerprint -> store lookup
          -> Hits -> matching -> Match -> service -> api / cli

``audiofp.audio`` .. ``audiofp.matching`` are pure functions over numpy arrays,
``audiofp.store`` is the only code that talks to the database, and
``audiofp.service`` composes the two into use cases.
"""

__version__ = "0.1.0"
