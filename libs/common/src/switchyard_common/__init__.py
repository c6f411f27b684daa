"""What every Switchyard service shares."""

__version__ = "0.1.0"
