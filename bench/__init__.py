"""The benchmark of audiofp: corpus builder, runner, report and scale test.

Nothing under ``audiofp`` imports this package. The corpus is built from real
recorded audio installed by Debian packages (game music, voice prompts) plus
espeak-ng speech, and is generated on the machine, never committed.
"""
