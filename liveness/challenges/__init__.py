"""Challenge-response: the ChallengeSpec table (spec), per-frame measures (features), verifiers,
the engine, breakdown scoring and the opportunistic twin.
"""
