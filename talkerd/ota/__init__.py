"""Over-the-air updates of engines and models: signed bundles, staged releases, an atomic switch, a
trial, automatic rollback, and recovery after a crash or a power cut.

Modules, from the outside in: ``cli`` (``talkerd-ota``), ``publish`` (making bundles), ``installer``
(install and rollback), ``recovery`` (after a crash), ``onboard`` (TensorRT engines built on the
device), ``trial`` (warm-up checked against the bundle; telling the daemon), ``daemon_side`` (the
daemon's ``engines`` and ``engines.reload``), ``store`` (releases, the ``current`` link, the state file,
the lock), ``bundle`` (reading, verifying and writing bundle files),
``manifest`` (what a bundle promises), ``keys`` (ed25519 keys and the pinned trust root),
``download`` (resumable HTTP), ``device`` (what this device runs), ``fileio`` (every write the
store makes, with the step hook that crash tests use) and ``errors``.
"""
