"""checks — trust the gradients.

gradcheck.py (finite differences), testing.py (Hypothesis strategies, check_op), reference.py (BPTT by hand).
"""
