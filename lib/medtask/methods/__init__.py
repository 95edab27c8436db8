"""The three papers' methods, one folder each; every folder holds everything of its method.

- :mod:`medtask.methods.mvmicnet`  Study A: task-driven compression (codecs, strategies, study, report, plots)
- :mod:`medtask.methods.angioqa`   Study B: lightweight angiography quality assessment
- :mod:`medtask.methods.gradprom`  Study C: task-driven enhancement with Gradient Promotion

A method uses :mod:`medtask.engine`, :mod:`medtask.nn`, :mod:`medtask.metrics`, :mod:`medtask.data`
and :mod:`medtask.reporting`, never another method.
"""
