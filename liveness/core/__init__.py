"""The contracts every stage shares: types, the review document, errors, hooks, the analyser
contract, the protocols a Session is made of, the Session itself and the one copy of each shared
rule (images, numbers, files, the usable face, the model registry). Imports nothing above it.
"""
