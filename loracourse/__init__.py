"""loracourse: the helper package of the course "LoRA in practice".

Each module has one job (see its docstring). Importing the package changes nothing global:
no seeds, no logging or plotting settings.
"""

__version__ = "0.1.0"
