"""The plugin that registers lipobench's own adapters, exactly as a third-party plugin would.

pyproject declares it as the entry point ``builtin`` of the group ``lipobench``. Importing the
adapter modules is cheap: each imports its tool inside its methods only. LipoPose's figure
(its Fig. 8) comes with it, from :mod:`lipobench.adapters.lipopose_report`.
"""

from __future__ import annotations

from lipobench.adapters.lipopose_report import LEGEND_ABBREVIATIONS, lipobench_figures
from lipobench.hookspecs import hookimpl

__all__ = ["lipobench_register_adapters", "lipobench_figures"]


@hookimpl
def lipobench_register_adapters(registry) -> None:
    """Register log, cryolo, cellpose, topaz and lipopose."""
    from lipobench.adapters.cellpose import CellposeAdapter
    from lipobench.adapters.cryolo import CryoloAdapter
    from lipobench.adapters.lipopose import LipoPoseAdapter
    from lipobench.adapters.log import LogAdapter
    from lipobench.adapters.topaz import TopazAdapter

    registry.register(LogAdapter)
    registry.register(CryoloAdapter)
    registry.register(CellposeAdapter)
    registry.register(TopazAdapter)
    registry.register(LipoPoseAdapter, abbreviations=LEGEND_ABBREVIATIONS)
