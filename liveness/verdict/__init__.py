"""From signals to an answer: the fusion and its parameters, the usable-face gate, the confusion
table, and the HTML report with its plots and plain-language texts.
"""
