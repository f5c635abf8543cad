"""Pages a person reads: a run's or a round's report (``html.py``, its command line; ``page.py``
and the templates in ``assets/``) and the comparison of runs (``compare.py``)."""
