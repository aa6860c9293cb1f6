"""Reporting: the results folder of a run, its one aggregation, its labels, colours and figures.

Each concept has one module:

- :mod:`~lipobench.report.results`: the files ``lipobench run`` writes (``results``,
  ``parameters``, ``summary.csv``, ``comparisons.csv``) and how they are built and merged;
- :mod:`~lipobench.report.parameters`: the long-form parameter table (one row per
  configuration, fold and parameter) and the wide ``param.<name>`` columns made from it;
- :mod:`~lipobench.report.aggregate`: micro-averaged rates (on :func:`lipobench.metrics.rates`),
  per fold, and each method's best configuration;
- :mod:`~lipobench.report.intervals`: bootstrap intervals and paired comparisons of a table;
- :mod:`~lipobench.report.labels`: the one configuration label, abbreviated as the adapters say;
- :mod:`~lipobench.report.folder`: a results folder opened for reading, with its summary,
  labels, parameters and its one colour map;
- :mod:`~lipobench.report.style`: colours and the figure helpers every figure shares;
- :mod:`~lipobench.report.plots` and :mod:`~lipobench.report.overlays`: figures, pure
  functions from DataFrames (or a micrograph and its panels) to matplotlib Figures;
- :mod:`~lipobench.report.figures`: the frames those figures draw, computed from a folder;
- :mod:`~lipobench.report.make`: every figure of a folder, the plugins' ones included (hook
  ``lipobench_figures``, :mod:`lipobench.hookspecs`).

Nothing here names an adapter: what is particular to one (LipoPose's Fig. 8, the legend names
of its parameters) comes from its plugin.
"""
