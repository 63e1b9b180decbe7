"""`stockpipe lab`: the workshop's labs (docs/workshop/), each checked against the running pipeline
(read-only: ``checks.py``), and lab 5's mistakes planted in it and undone (``mistakes.py``)."""

from stockpipe.lab.checks import LABS, Expectation, Lab, LabResult, check_lab, lab_named
from stockpipe.lab.mistakes import MISTAKES, Mistake, plant, planted, reset

__all__ = ["LABS", "MISTAKES", "Expectation", "Lab", "LabResult", "Mistake", "check_lab", "lab_named", "plant",
           "planted", "reset"]
