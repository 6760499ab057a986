"""Small programs the kiosk's systemd units run around the daemon.

- ``wait_for_x``: the X server unit's readiness check (``ExecStartPost``): done when X accepts a
  client, not when its socket file appears.
- ``performance``: the boot-time oneshot that puts a Jetson in its full-performance mode.
- ``out_of_service``: the screen shown when talkerd cannot be brought back, and its slow retry.

Each is run as ``python -m talkerd.kiosk.NAME`` from the installed venv; none needs the models.
"""
