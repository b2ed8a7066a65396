"""checks — trust the gradients.

gradcheck.py (finite differences; its Jacobians in jacobians.py, its reports in reports.py),
testing.py (Hypothesis strategies, check_op), reference.py (BPTT by hand).
"""
