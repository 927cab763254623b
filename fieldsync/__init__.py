"""fieldsync: secure offline field collection for human-rights documentation."""

__version__ = "0.1.0"
