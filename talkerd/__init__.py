"""talkerd: an offline talking-avatar kiosk daemon."""

__version__ = "0.1.0"
