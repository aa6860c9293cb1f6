"""LipoPose's two choices, as enums: the confidence map and the merge.

:func:`lipobench.choices.choose` turns a user's string into a member.
"""

from __future__ import annotations

import enum

__all__ = ["ConfidenceMethod", "MergeMethod"]


class ConfidenceMethod(str, enum.Enum):
    """How per-diameter masks become a per-pixel confidence in percent.

    ``average`` (the study's default): ``100 * (M1 + ... + Mn) / n`` over the binarized masks.
    ``sliding_window`` (the study's alternative): the best agreement among ``window``
    consecutive diameters, ``100 * max_i (M_i + ... + M_{i+window-1}) / window``; a particle
    that only a narrow band of diameters finds still reaches a high confidence.
    """

    AVERAGE = "average"
    SLIDING_WINDOW = "sliding_window"


class MergeMethod(str, enum.Enum):
    """How the confidence becomes particles.

    ``connected`` (the study): connected components of the thresholded confidence map, which
    fuses particles that touch. ``instances`` (lipobench): per-diameter instances grouped by
    overlap, each group scored by the share of diameters that found it (:func:`merge_instances`).
    """

    CONNECTED = "connected"
    INSTANCES = "instances"
