"""The diameters LipoPose runs Cellpose at: a start, an inclusive stop and a step, in pixels."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lipobench.errors import UserError

__all__ = ["DiameterRange", "parse_diameter_range"]


class DiameterRange(BaseModel):
    """Diameters in pixels from ``start`` to ``stop`` inclusive, every ``step``.

    >>> DiameterRange(start=10, stop=30, step=5).values()
    [10.0, 15.0, 20.0, 25.0, 30.0]
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: float = Field(gt=0)
    stop: float = Field(gt=0)
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop:g} is below start {self.start:g}")
        return self

    def values(self) -> list[float]:
        """The diameters, ``start + k * step`` up to ``stop`` (inclusive, with a float margin)."""
        count = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [float(round(self.start + k * self.step, 9)) for k in range(count)]

    def check_fits(self, image_shape, *, where: str = "diameters") -> None:
        """Raise a UserError when a diameter exceeds the image's smaller side."""
        limit = min(image_shape)
        if self.stop > limit:
            raise UserError(
                f"{where}: diameter {self.stop:g} px exceeds the image size {limit} px; "
                "give a stop diameter no larger than the image"
            )


def parse_diameter_range(text: str, *, key: str = "--diameters") -> DiameterRange:
    """Parse ``START:STOP:STEP`` (pixels, stop inclusive) into a :class:`DiameterRange`.

    >>> parse_diameter_range("20:40:10").values()
    [20.0, 30.0, 40.0]
    """
    parts = str(text).split(":")
    try:
        if len(parts) != 3:
            raise ValueError("three numbers needed")
        start, stop, step = (float(p) for p in parts)
        return DiameterRange(start=start, stop=stop, step=step)
    except (ValueError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise UserError(
            f"{key} {text!r} is not START:STOP:STEP with positive pixel sizes ({detail}); "
            "write it like 20:200:5"
        ) from None
