"""checks — trust the gradients.

gradcheck.py (finite differences; its Jacobians in jacobians.py, its reports in reports.py),
strategies.py (Hypothesis strategies),
testing.py (check_op), reference.py (BPTT by hand).
"""
