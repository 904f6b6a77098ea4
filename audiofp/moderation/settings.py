"""Knobs of the moderation domain: verdict thresholds and input limits.

Kept apart from :class:`audiofp.config.Settings` (the engine's knobs) because
only the service uses them; the engine settings it needs are derived here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Settings
from ..errors import ParameterError


@dataclass(frozen=True)
class ModerationSettings:
    """Thresholds that turn matches into a recommended action.

    Attributes
    ----------
    block_confidence : float
        A reused sound linked to removed content with match confidence at or
        above this recommends ``block``.
    review_confidence : float
        ... at or above this (but below ``block_confidence``) recommends ``review``.
    min_use_confidence : float
        Matches below this confidence are not recorded as uses nor reported.
    engine : Settings
        Decode limits (maximum bytes, maximum duration, decode timeout).
    """

    block_confidence: float = 0.999
    review_confidence: float = 0.9
    min_use_confidence: float = 0.5
    engine: Settings = field(default_factory=Settings)

    def __post_init__(self) -> None:
        for name in ("block_confidence", "review_confidence", "min_use_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ParameterError(f"{name} must be within [0, 1], got {value}")
        if self.review_confidence > self.block_confidence:
            raise ParameterError("review_confidence must not exceed block_confidence")

    def action(self, linked_confidences: list[float]) -> str:
        """``block``, ``review`` or ``allow`` given the confidences of the
        reused sounds that are linked to removed content."""
        best = max(linked_confidences, default=0.0)
        if linked_confidences and best >= self.block_confidence:
            return "block"
        if linked_confidences and best >= self.review_confidence:
            return "review"
        return "allow"
