"""The error hierarchy of audiofp.

Every failure a user can cause is one of these types, so that the CLI maps them
to an exit code and one line, and the API maps them to problem+json, each in one
place. Nothing below ``audiofp`` knows about HTTP status codes or exit codes.
"""

from __future__ import annotations


class AudioFPError(Exception):
    """Base class of every error audiofp raises on purpose."""


class BadAudioError(AudioFPError):
    """The input could not be turned into usable audio.

    Raised for files that are not audio, truncated or corrupt containers, media
    without an audio track, and zero-length input.
    """


class SilentAudioError(BadAudioError):
    """The audio decoded but holds no signal to fingerprint (silence or near-silence)."""


class NothingToFingerprintError(BadAudioError):
    """The audio decoded but yields no fingerprint: too short, or too flat (a DC offset) to have peaks.

    Such audio cannot become a sound: no clip could ever be matched against it.
    """


class AudioTooLongError(BadAudioError):
    """The audio is longer than the configured maximum duration."""


class CheckTimeoutError(BadAudioError):
    """Decoding, fingerprinting and matching one input took longer than its wall-clock budget."""


class InputTooLargeError(BadAudioError):
    """The input file is larger than the configured maximum size."""


class ParameterError(AudioFPError, ValueError):
    """An engine function was called with arguments it cannot work with."""


class OutOfRangeError(ParameterError):
    """A well-formed value lies outside what the service accepts (an upload dated in year 9999)."""


class IndexMismatchError(AudioFPError):
    """The index was built with other fingerprint parameters than the running code's.

    Mixing fingerprints of two parameter sets silently ruins matching, so the
    store refuses instead.
    """


class NotFoundError(AudioFPError):
    """A requested record (sound, upload, key...) does not exist."""


class ConflictError(AudioFPError):
    """The request conflicts with the current state (for instance a duplicate)."""


class IdempotencyMismatchError(ConflictError):
    """A content id or idempotency key seen before came back with another payload.

    A retry must carry the same content id, account id and bytes as the
    submission it repeats; anything else is another upload, which must not be
    answered with the first one's verdict (nor dropped without a word).
    """


class RetryableError(AudioFPError):
    """A concurrent writer won a race; the same call may succeed if made again.

    Raised by the store for a deadlock, a serialization failure, a lock that
    could not be had in time, and by the services for a unique race they lost
    (two uploads registering the same new sound at once). The operation wrote
    nothing: its transaction was rolled back.
    """


class StoreUnavailableError(AudioFPError):
    """The database cannot be reached (connection refused, lost or timed out)."""
