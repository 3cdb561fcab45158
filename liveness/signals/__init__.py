"""The passive analysers, one module each: quality, pose consistency, face slip and smoothness,
identity (and its enrolment, its embedding model), artefact and sharpness gap.
"""
