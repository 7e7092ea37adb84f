"""The report: notebook runs (:mod:`.run`, papermill), the offline page (:mod:`.page`, nbconvert
with the ``hw2`` template; formulas by :mod:`.mathml`), what notebooks call to show results
(:mod:`.show`), the reader's check in a browser (:mod:`.check`) and the PDF to hand in
(:mod:`.pdf`)."""
from .page import build_html, off_machine_urls
from .run import (check_params, declared_params, fingerprint, notebook_order, parse_param,
                  run_all, run_notebook, save_metrics)

__all__ = ["build_html", "check_params", "declared_params", "fingerprint", "notebook_order",
           "off_machine_urls", "parse_param", "run_all", "run_notebook", "save_metrics"]
