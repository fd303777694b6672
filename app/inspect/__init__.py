"""The torch-facing domain layer: plain functions over nn.Modules and tensors.

Nothing here imports a web framework (a unit test enforces it); every function
is usable from a Python prompt with a model and no server.
"""
