"""What users run: the command line (review, batch, eval, enroll) and ``liveness serve``.
"""
