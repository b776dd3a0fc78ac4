"""The bottom layer: errors, the output contract, recipe-model basics and path rules. Imports nothing of prefgen."""
